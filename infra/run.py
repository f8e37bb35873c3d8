"""`make run`: the whole system on this machine, then the seed's "Generate some content".

Starts Kafka, PostgreSQL and the SMTP sink unless BOOTSTRAP_SERVERS / DATABASE_URL / SMTP_HOST
say otherwise (infra/up.sh), generates the token signing keys once (.run/jwt), starts the four
services and the notifications worker, logs in as the first admin, runs the seed's curl sequence,
waits for the invoice email and shows where it is. Ctrl-C stops everything this run started.

    make run                      # demo, then keep running until Ctrl-C
    .venv/bin/python infra/run.py --no-demo
"""

from __future__ import annotations

import argparse
import asyncio
import email
import os
import secrets
import signal
import subprocess
import sys
import time
from email import policy
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
PY = sys.executable

SERVICES = [
    # name, command, port variable, port (the worker serves /health and /metrics only)
    ("customers", [PY, "-m", "customers"], "PORT", 3001),
    ("orders", [PY, "-m", "orders"], "PORT", 3002),
    ("notifications", [PY, "-m", "notifications"], "PORT", 3003),
    ("security", [PY, "-m", "security"], "PORT", 3004),
    ("notifications-worker", [PY, "-m", "notifications", "worker"], "WORKER_PORT", 3005),
]


def say(text: str) -> None:
    print(f"[run] {text}", flush=True)


PIECES = {"kafka": "LOCAL_KAFKA", "postgres": "LOCAL_POSTGRES", "smtp": "LOCAL_SMTP"}


def running(piece: str) -> bool:
    return (
        subprocess.run(["bash", f"infra/{piece}.sh", "status"], cwd=ROOT, capture_output=True).returncode == 0
    )


def infrastructure() -> tuple[dict[str, str], list[str]]:
    """Start what is missing; returns the variables and the pieces this run started."""
    before = {piece for piece in PIECES if running(piece)}
    subprocess.run(["bash", "infra/up.sh"], cwd=ROOT, check=True)
    env = {}
    for line in (RUN / "env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    started = [piece for piece, flag in PIECES.items() if env.get(flag) == "1" and piece not in before]
    return env, started


def write_secret(path: Path, data: str | bytes) -> None:
    """Write a file only its owner may read (a token, a password, a private key): created with
    mode 0600 by the open itself, never readable by others for a moment; an existing file is
    narrowed to 0600 before it is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, 0o600)
        file.write(data.encode() if isinstance(data, str) else data)


def signing_keys() -> dict[str, str]:
    folder = RUN / "jwt"
    private, public = folder / "private.pem", folder / "public.pem"
    if not private.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        write_secret(
            private,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return {"JWT_PRIVATE_KEY_FILE": str(private), "JWT_PUBLIC_KEY_FILE": str(public)}


def admin_credentials() -> dict[str, str]:
    file = RUN / "admin"
    if not file.exists():
        write_secret(file, f"admin@example.com\n{secrets.token_urlsafe(12)}\n")
    email_, password = file.read_text().split()
    return {
        "ADMIN_EMAIL": os.environ.get("ADMIN_EMAIL", email_),
        "ADMIN_PASSWORD": os.environ.get("ADMIN_PASSWORD", password),
    }


async def wait_healthy(
    session: aiohttp.ClientSession, name: str, port: int, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see .run/logs/{name}.log")
        try:
            async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.3)
    raise SystemExit(f"{name} did not answer /health on port {port}; see .run/logs/{name}.log")


async def call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as resp:
        answer = await resp.json()
        say(f"{method} {url} -> {resp.status}")
        if resp.status >= 400:
            raise SystemExit(f"demo step failed: {answer}")
        return answer


async def demo(session: aiohttp.ClientSession, env: dict[str, str]) -> None:
    c, o = "http://127.0.0.1:3001", "http://127.0.0.1:3002"
    login = await call(
        session,
        "POST",
        "http://127.0.0.1:3004/login",
        None,
        {"email": env["ADMIN_EMAIL"], "password": env["ADMIN_PASSWORD"]},
    )
    token = login["jwt"]
    write_secret(RUN / "token", token + "\n")
    say("token in .run/token; e.g.")
    say('  curl -H "Authorization: Bearer $(cat .run/token)" http://127.0.0.1:3001/organizations')
    super_co = await call(
        session, "POST", f"{c}/organizations", token, {"organization": {"name": "SuperCompany"}}
    )
    await call(session, "POST", f"{c}/organizations", token, {"organization": {"name": "SomeCompany"}})
    john = await call(
        session,
        "POST",
        f"{c}/customers",
        token,
        {"customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}},
    )
    await call(
        session,
        "POST",
        f"{c}/customers",
        token,
        {"customer": {"name": "Matt", "last_name": "Berrueta", "email": "mberrueta@gmail.com"}},
    )
    await call(
        session,
        "PUT",
        f"{c}/organizations/{super_co['id']}",
        token,
        {"organization": {"name": "SuperCompany Tech"}},
    )
    mail_dir = Path(env.get("SMTP_SINK_DIR", RUN / "mail"))
    before = set(mail_dir.glob("*.eml")) if mail_dir.exists() else set()
    order = await call(
        session,
        "POST",
        f"{o}/orders",
        token,
        {
            "po": "po002",
            "organization_id": super_co["id"],
            "customer_id": john["id"],
            "date": "2022-05-07T07:50:03-00:00",
            "deliver_date": "2022-05-07T07:53:03-00:00",
            "state": "pending",
        },
    )
    say(f"order {order['id']} placed; waiting for the invoice email")
    if "SMTP_SINK_DIR" not in env:
        say(f"mail goes to {env.get('SMTP_HOST')}:{env.get('SMTP_PORT')}; see your SMTP server")
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in sorted(set(mail_dir.glob("*.eml")) - before):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if "po002" in str(message["Subject"]):
                say(f"invoice email to {message['To']}: {message['Subject']!r}")
                say(f"  file: {path}")
                return
        await asyncio.sleep(0.3)
    say("no invoice email within 60 s; see .run/logs/notifications-worker.log")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--exit-after-demo", action="store_true")
    args = parser.parse_args()
    infra, started = infrastructure()
    env = {**os.environ, **infra, **signing_keys(), **admin_credentials()}
    logs = RUN / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with aiohttp.ClientSession() as session:
            for name, command, port_variable, port in SERVICES:
                proc_env = {**env, port_variable: str(port)}
                with open(logs / f"{name}.log", "ab") as log:
                    procs.append(
                        (name, subprocess.Popen(command, cwd=ROOT, env=proc_env, stdout=log, stderr=log))
                    )
            for (name, _, _, port), (_, proc) in zip(SERVICES, procs, strict=True):
                await wait_healthy(session, name, port, proc)
                say(f"{name}: http://127.0.0.1:{port} (/health, /metrics; log: .run/logs/{name}.log)")
            for key in ("BOOTSTRAP_SERVERS", "DATABASE_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_SINK_DIR"):
                if key in infra:
                    value = infra[key].replace(":postgres@", ":***@")
                    say(f"{key}={value}")
            say(f"admin: {env['ADMIN_EMAIL']} / password in .run/admin")
            if not args.no_demo:
                await demo(session, env)
        if args.exit_after_demo:
            return
        say("running; Ctrl-C stops everything this run started")
        await stop.wait()
    finally:
        for _, proc in reversed(procs):
            proc.terminate()
        for _, proc in reversed(procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for piece in started:
            subprocess.run(["bash", f"infra/{piece}.sh", "stop"], cwd=ROOT, check=False)
        say("stopped")


if __name__ == "__main__":
    asyncio.run(main())
