"""`make run` (infra/run.py) keeps what it writes under .run/ that holds a secret (the admin's
password, the signing key, the demo's token) readable by its owner only, from the first byte."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import ROOT


@pytest.fixture
def run(tmp_path: Path) -> Iterator[ModuleType]:
    """infra/run.py with its run folder in tmp_path, under a umask that would leave files open to
    everyone: a mode of 0600 then comes from the open itself."""
    spec = importlib.util.spec_from_file_location("infra_run", ROOT / "infra" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    module.RUN = tmp_path
    old = os.umask(0)
    try:
        yield module
    finally:
        os.umask(old)
        del sys.modules[spec.name]


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_admin_password_file_is_created_0600(run: ModuleType, tmp_path: Path) -> None:
    credentials = run.admin_credentials({})
    assert mode(tmp_path / "admin") == 0o600
    assert credentials.password in (tmp_path / "admin").read_text()


def test_the_private_signing_key_is_created_0600(run: ModuleType, tmp_path: Path) -> None:
    keys = run.signing_keys()
    assert mode(Path(keys["JWT_PRIVATE_KEY_FILE"])) == 0o600
    assert b"PRIVATE KEY" in Path(keys["JWT_PRIVATE_KEY_FILE"]).read_bytes()


def test_write_secret_creates_0600_and_narrows_a_file_left_open(run: ModuleType, tmp_path: Path) -> None:
    run.write_secret(tmp_path / "token", "a.b.c\n")
    assert mode(tmp_path / "token") == 0o600
    assert (tmp_path / "token").read_text() == "a.b.c\n"
    (tmp_path / "old").write_text("left by an older version")
    (tmp_path / "old").chmod(0o644)
    run.write_secret(tmp_path / "old", b"new")
    assert mode(tmp_path / "old") == 0o600
    assert (tmp_path / "old").read_bytes() == b"new"


def test_the_demo_writes_its_token_with_write_secret() -> None:
    source = (ROOT / "infra" / "run.py").read_text()
    assert 'write_secret(RUN / "token"' in source
    assert '"token").write' not in source
