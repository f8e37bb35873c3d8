"""Every process has a real command line: `--help` and `--version` answer with an empty
environment (no key, no database, no Kafka), a setting that cannot be used is one line and
status 2, never a traceback; the `[project.scripts]` entry points run the same code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

BIN = Path(sys.executable).parent
MODULES = {  # python -m ... -> what its usage line must show
    ("customers",): "usage: python -m customers",
    ("orders",): "usage: python -m orders",
    ("security",): "usage: python -m security",
    ("security", "unlock"): "usage: python -m security unlock [-h] EMAIL",
    ("notifications",): "usage: python -m notifications",
    ("notifications", "worker"): "usage: python -m notifications worker",
    ("kafka_integration",): "usage: python -m kafka_integration",
    ("kafka_integration", "tail"): "usage: python -m kafka_integration tail",
    ("console",): "usage: python -m console",
    ("console", "deadletters"): "usage: python -m console deadletters",
}
SCRIPTS = [
    "customers",
    "orders",
    "security",
    "notifications",
    "notifications-worker",
    "kafka-integration",
    "console",
]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """With an empty environment: nothing configured, not even PATH."""
    return subprocess.run(command, cwd=ROOT, env={}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("words", sorted(MODULES), ids=" ".join)
def test_help_needs_no_environment(words: tuple[str, ...]) -> None:
    done = run(sys.executable, "-m", *words, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(MODULES[words])
    assert "Traceback" not in done.stderr


def test_the_worker_help_names_no_jwt_key() -> None:
    done = run(sys.executable, "-m", "notifications", "worker", "--help")
    assert done.returncode == 0
    assert "JWT" not in done.stdout
    assert "WORKER_PORT" in done.stdout and "SMTP_HOST" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_entry_point_has_help_and_version(script: str) -> None:
    helped = run(str(BIN / script), "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith(f"usage: {script}")
    versioned = run(str(BIN / script), "--version")
    assert versioned.returncode == 0, versioned.stderr
    assert versioned.stdout.strip().startswith(f"{script} 0.")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (("customers",), "set JWT_PUBLIC_KEY_FILE"),
        (("orders", "--port", "abc"), "invalid int value: 'abc'"),
        (("security", "unlock"), "required: EMAIL"),
        (("notifications", "jobs"), "invalid choice: 'jobs'"),
        (("notifications", "--port", "\x1b[31m"), "invalid int value"),
        (("kafka_integration", "tail", "orders", "--limit", "0"), "--limit must be at least 1"),
    ],
    ids=str,
)
def test_a_setting_that_cannot_be_used_is_one_message_and_status_2(
    command: tuple[str, ...], says: str
) -> None:
    done = run(sys.executable, "-m", *command)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_environment_value_is_named_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "notifications", "worker"],
        cwd=ROOT,
        env={"WORKER_PORT": "\x1b[2J" + "9" * 10_000},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot start: WORKER_PORT must be an integer, got '\\x1b[2J999" in done.stderr
    assert "(10004 characters)" in done.stderr and len(done.stderr) < 300  # quoted, escaped, cut short
    assert "Traceback" not in done.stderr
