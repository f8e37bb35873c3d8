"""compose.yaml cannot run here (no container engine): this keeps it in step with the code.

Each service's environment is handed to its `Config.from_env` through a mapping that records
what the code reads, so a variable the code does not read (a typo, a renamed setting) and a
setting the code needs but compose leaves out both fail here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, write_signing_keys

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
APPS = {  # compose service -> (python -m module, port it serves, variables it must be given)
    "customers": ("customers", 3001, {"BOOTSTRAP_SERVERS", "DATABASE_URL", "JWT_PUBLIC_KEY_FILE"}),
    "orders": ("orders", 3002, {"BOOTSTRAP_SERVERS", "DATABASE_URL", "JWT_PUBLIC_KEY_FILE"}),
    "notifications": (
        "notifications",
        3003,
        {
            "BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "JWT_PUBLIC_KEY_FILE",
            "SMTP_HOST",
            "SMTP_PORT",
            "MATERIALIZER_STATE_DIR",
        },
    ),
    "notifications-worker": (
        "notifications",
        3005,
        {
            "BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "SMTP_HOST",
            "SMTP_PORT",
            "MATERIALIZER_STATE_DIR",
            "WORKER_PORT",
        },
    ),
    "console": (
        "console",
        3006,
        {"BOOTSTRAP_SERVERS", "DATABASE_URL", "JWT_PUBLIC_KEY_FILE", "SECURITY_URL", "WORKER_URLS"},
    ),
    "security": (
        "security",
        3004,
        {
            "BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "JWT_PRIVATE_KEY_FILE",
            "JWT_PUBLIC_KEY_FILE",
            "ADMIN_EMAIL",
            "ADMIN_PASSWORD",
        },
    ),
}


class Recording(Mapping[str, str]):
    """The environment a service is given, noting every name the code asks for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self.values

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self.values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a Config must ask for its variables by name, not list the environment")

    def __len__(self) -> int:
        return len(self.values)


def test_compose_has_the_infrastructure_and_the_six_processes() -> None:
    assert set(SERVICES) == {"redpanda", "postgres", "smtp", "keys", *APPS}
    assert "redpanda" in SERVICES["redpanda"]["image"]
    assert SERVICES["postgres"]["environment"]["POSTGRES_DB"] == "app"


def test_every_published_port_is_on_loopback() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("name", sorted(APPS))
def test_each_process_runs_its_module_on_its_port_with_what_the_code_reads(name: str, tmp_path: Path) -> None:
    module, port, required = APPS[name]
    service = SERVICES[name]
    command = service["command"]
    assert command[:3] == ["python", "-m", module]
    assert command[3:] == (["worker"] if name.endswith("-worker") else [])
    assert f"127.0.0.1:{port}:{port}" in service["ports"]
    env = {k: str(v) for k, v in service["environment"].items()}
    missing = required - set(env)
    assert not missing, f"{name} lacks {sorted(missing)}"
    assert int(env.get("PORT", env.get("WORKER_PORT", env.get("CONSOLE_PORT", 0)))) == port
    # the key files live in a volume; point them at real files for the code to read
    keys = write_signing_keys(tmp_path)
    given = {k: keys.get(k, v) for k, v in env.items()}
    recorder = Recording(given)
    configs = importlib.import_module(f"{module}.config")
    config = (configs.WorkerConfig if name.endswith("-worker") else configs.Config).from_env(recorder)
    unread = set(env) - recorder.asked
    assert not unread, f"{name}: compose sets {sorted(unread)}, which the code never reads"
    if hasattr(config, "http") and not name.endswith("-worker"):
        assert config.http.port == port and config.http.host == "0.0.0.0"
    assert config.kafka.bootstrap_servers == "redpanda:9092"
    assert config.db.url.reveal().endswith("@postgres:5432/app")


def test_the_image_copies_every_package_compose_runs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    for module, _, _ in APPS.values():
        assert module in copied
    for path in copied:
        assert (ROOT / path).exists(), path
    assert "infra/smtp_sink.py" in copied
    assert SERVICES["smtp"]["command"][:2] == ["python", "infra/smtp_sink.py"]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """volume name -> where the service mounts it."""
    return dict(str(v).split(":")[:2] for v in service.get("volumes", []))  # type: ignore[misc]


def test_only_the_security_service_gets_the_private_key() -> None:
    private_file = SERVICES["security"]["environment"]["JWT_PRIVATE_KEY_FILE"]
    folder = private_file.rsplit("/", 1)[0]
    volume = {target: name for name, target in _mounts(SERVICES["security"]).items()}[folder]
    holders = {name for name, service in SERVICES.items() if volume in _mounts(service)}
    assert holders == {"security", "keys"}  # the generator writes it, security reads it
    for name, service in SERVICES.items():
        if name != "security":
            assert "JWT_PRIVATE_KEY_FILE" not in service.get("environment", {}), name
    public_file = COMPOSE["x-common-env"]["JWT_PUBLIC_KEY_FILE"]
    assert not public_file.startswith(folder + "/")  # the public key lives apart from it
    for name in APPS:
        mounted = public_file.rsplit("/", 1)[0] in _mounts(SERVICES[name]).values()
        assert mounted != name.endswith("-worker"), name  # the worker checks no token: no key


def test_the_key_generator_writes_the_private_key_with_mode_0600(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = SERVICES["keys"]["command"][2]
    keys, public = tmp_path / "keys", tmp_path / "public-keys"
    keys.mkdir()
    public.mkdir()
    script = script.replace('"/keys/', f'"{keys}/').replace('"/public-keys/', f'"{public}/')
    old = os.umask(0)  # a permissive umask: the mode must come from the open itself
    try:
        subprocess.run([sys.executable, "-c", script], check=True)
    finally:
        os.umask(old)
    assert (keys / "private.pem").stat().st_mode & 0o777 == 0o600
    assert b"PUBLIC KEY" in (public / "public.pem").read_bytes()
    assert not list(public.glob("private*"))


def test_the_image_runs_as_a_user_without_privileges() -> None:
    lines = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in {"root", "0"}
    last_user = max(i for i, words in enumerate(lines) if words[0] == "USER")
    assert all(words[0] != "USER" for words in lines[last_user + 1 :])
