"""The project's infrastructure scripts: idempotent, loopback only, and a sink a test can read."""

from __future__ import annotations

import email
import smtplib
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support import ROOT, copies


def _listening_addresses(port: int) -> set[str]:
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    hosts = {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}
    return {h.removeprefix("[::ffff:").removesuffix("]") for h in hosts}  # Java's IPv4-mapped form


def test_a_second_start_finds_the_running_pieces(infra: dict[str, str]) -> None:
    if infra.get("LOCAL_KAFKA") != "1":
        pytest.skip("infrastructure is configured from outside")
    pid = (ROOT / ".run" / "kafka" / "pid").read_text()
    again = subprocess.run(["bash", "infra/up.sh"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "kafka already running" in again.stderr
    assert (ROOT / ".run" / "kafka" / "pid").read_text() == pid


@pytest.mark.parametrize("variable", ["BOOTSTRAP_SERVERS", "DATABASE_URL", "SMTP_HOST"])
def test_servers_listen_on_loopback_only(infra: dict[str, str], variable: str) -> None:
    flag = {"BOOTSTRAP_SERVERS": "LOCAL_KAFKA", "DATABASE_URL": "LOCAL_POSTGRES", "SMTP_HOST": "LOCAL_SMTP"}[
        variable
    ]
    if infra.get(flag) != "1":
        pytest.skip("configured from outside")
    port = {
        "BOOTSTRAP_SERVERS": infra["BOOTSTRAP_SERVERS"].rsplit(":", 1)[1],
        "DATABASE_URL": infra["DATABASE_URL"].rsplit(":", 1)[1].split("/")[0],
        "SMTP_HOST": infra["SMTP_PORT"],
    }[variable]
    assert _listening_addresses(int(port)) == {"127.0.0.1"}


def test_the_smtp_sink_keeps_each_message_as_an_eml_file(infra: dict[str, str]) -> None:
    if infra.get("LOCAL_SMTP") != "1":
        pytest.skip("configured from outside")
    folder = Path(infra["SMTP_SINK_DIR"])
    before = set(folder.glob("*.eml"))
    msg = EmailMessage()
    msg["From"] = "tests@example.com"
    msg["To"] = "someone@example.com"
    msg["Subject"] = "sink check"
    msg.set_content("hello sink")
    with smtplib.SMTP("127.0.0.1", int(infra["SMTP_PORT"])) as smtp:
        smtp.login("any-user", "any-password")
        smtp.send_message(msg)
    deadline = time.monotonic() + 5
    while not (new := set(folder.glob("*.eml")) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    (path,) = new
    parsed = email.message_from_bytes(path.read_bytes())
    assert parsed["Subject"] == "sink check"
    assert parsed["X-Envelope-To"] == "someone@example.com"
    assert parsed.get_payload().strip() == "hello sink"


def test_the_sink_keeps_every_copy_of_a_repeated_message_id(infra: dict[str, str]) -> None:
    if infra.get("LOCAL_SMTP") != "1":
        pytest.skip("configured from outside")
    folder = Path(infra["SMTP_SINK_DIR"])
    message_id = f"<dedupe-{time.time_ns()}@tests>"
    msg = EmailMessage()
    msg["From"] = "tests@example.com"
    msg["To"] = "someone@example.com"
    msg["Subject"] = "twice"
    msg["Message-ID"] = message_id
    msg.set_content("same message twice")
    for _ in range(2):
        with smtplib.SMTP("127.0.0.1", int(infra["SMTP_PORT"])) as smtp:
            smtp.send_message(msg)
    stored = [p for p in folder.glob("*.eml") if message_id in p.read_text()]
    assert len(stored) == 2
    assert all(email.message_from_bytes(p.read_bytes())["Subject"] == "twice" for p in stored)
    assert copies(infra, message_id) == {message_id: 2}


def test_the_kafka_script_knows_one_node_or_three_and_refuses_other_counts() -> None:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_NODES": "2", "RUN_DIR": "/tmp/kafka-nodes-check"}
    done = subprocess.run(
        ["bash", str(ROOT / "infra" / "kafka.sh"), "status"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 2 and "KAFKA_NODES must be 1 or 3" in done.stderr
    env = {**env, "KAFKA_NODES": "3", "KAFKA_PORT": "61092"}
    done = subprocess.run(
        ["bash", str(ROOT / "infra" / "kafka.sh"), "bootstrap"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.stdout.strip() == "127.0.0.1:61192,127.0.0.1:61292,127.0.0.1:61392"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_postgres_listens_on_the_port_asked_now_not_the_one_its_folder_was_made_with() -> None:
    """A cluster folder made with one PGPORT, started again with another: it listens on the new
    one (it kept the old one, and the start waited 60 s for nothing, then failed)."""
    import os
    import shutil

    # under the checkout: the server's user must reach the folder (it cannot enter /tmp/pytest-of-root)
    run = ROOT / ".run" / f"pg-port-test-{os.getpid()}"
    first, second = _free_port(), _free_port()

    def script(command: str, port: int, check: bool = True) -> None:
        env = {**os.environ, "RUN_DIR": str(run), "PGPORT": str(port)}
        script = str(ROOT / "infra" / "postgres.sh")
        subprocess.run(["bash", script, command], env=env, check=check, timeout=120)

    try:
        script("start", first)
        script("stop", first)
        script("start", second)
        assert _listening_addresses(second) == {"127.0.0.1"}
        assert _listening_addresses(first) == set()
    finally:
        script("stop", second, check=False)
        shutil.rmtree(run, ignore_errors=True)


def test_postgres_starts_from_a_checkout_inside_a_private_folder(tmp_path: Path) -> None:
    """A clone inside a folder only its owner may enter (`mktemp -d`, pytest's tmp_path: 0700):
    the `postgres` user cannot reach the run folder there, and initdb failed with "Permission
    denied" on its password file. The cluster now lives in /var/tmp, linked from the run folder."""
    import hashlib
    import os
    import shutil

    if os.geteuid() != 0:
        pytest.skip("the cluster belongs to another user only when the scripts run as root")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    run = private / "checkout" / ".run"
    away = Path("/var/tmp") / f"kafka-and-python-{hashlib.sha256(str(run).encode()).hexdigest()[:12]}"
    port = _free_port()

    def script(command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RUN_DIR": str(run), "PGPORT": str(port)}
        return subprocess.run(
            ["bash", str(ROOT / "infra" / "postgres.sh"), command],
            env=env,
            check=check,
            timeout=120,
            capture_output=True,
            text=True,
        )

    try:
        started = script("start")
        assert "cannot enter" in started.stderr and str(away) in started.stderr
        assert (run / "postgres").is_symlink() and (run / "postgres" / "data" / "PG_VERSION").is_file()
        assert _listening_addresses(port) == {"127.0.0.1"}
        again = script("start")  # a second start finds it through the link
        assert "already running" in again.stderr
        script("stop")
        assert _listening_addresses(port) == set()
        assert script("start").returncode == 0  # and starts it again from there
    finally:
        script("stop", check=False)
        shutil.rmtree(away, ignore_errors=True)
