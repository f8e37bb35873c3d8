"""`make run`: the whole system on this machine, then the seed's "Generate some content".

Each step says what it does and the time elapsed since the start:
  1. Kafka, PostgreSQL and the SMTP sink, unless BOOTSTRAP_SERVERS / DATABASE_URL / SMTP_HOST say
     otherwise (infra/up.sh: the first time it downloads Kafka's jars, and PostgreSQL as root);
  2. the token signing keys (.run/jwt) and the first administrator's credentials (.run/admin);
  3. the four services, the notifications worker and the console, a line for each as it answers
     /health;
  4. a login as that administrator (the token goes to .run/token);
  5. the seed's curl sequence, up to the invoice email;
then a summary (addresses, logs, token), and the run goes on until Ctrl-C.

The processes are watched all along: one that exits is reported at once with the last lines of
its log, the others are stopped, and the run ends with status 1. It stops rather than restarts:
a process that dies here is a bug or a broken setup to look at, and a restart loop would hide it
behind a demo that seems to work (compose.yaml restarts, as a deployment should).

The administrator is always the one the database holds: ADMIN_EMAIL/ADMIN_PASSWORD, when given,
are kept in .run/admin once a login with them has worked; when the login fails, the message says
that the database holds another administrator and how to reset.

    make run                                  # demo, then keep running until Ctrl-C
    .venv/bin/python infra/run.py --no-demo
    PORT_BASE=4001 make run                   # the processes on 4001-4006 instead of 3001-3006
"""

from __future__ import annotations

import argparse
import asyncio
import email
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email import policy
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from security.tokens import new_private_pem, public_pem

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
RUN = Path(os.environ.get("RUN_DIR") or ROOT / ".run").resolve()  # as infra/lib.sh
PY = sys.executable
STEPS = 5
HEALTH_SECONDS = 120  # six processes starting at once on a small, busy machine
LOG_LINES = 20  # how much of a dead process's log is shown


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]
    port_variable: str
    offset: int  # from PORT_BASE
    what: str


SERVICES = [
    Service("customers", ("-m", "customers"), "PORT", 0, "organizations, customers, invitations"),
    Service("orders", ("-m", "orders"), "PORT", 1, "orders and invoices"),
    Service("notifications", ("-m", "notifications"), "PORT", 2, "notifications, templates, tables"),
    Service("security", ("-m", "security"), "PORT", 3, "users, login, grants"),
    Service(
        "notifications-worker", ("-m", "notifications", "worker"), "WORKER_PORT", 4, "/health, /metrics only"
    ),
    Service(
        "console", ("-m", "console"), "CONSOLE_PORT", 5, "operations console (sign in as the administrator)"
    ),
]


class RunFailed(Exception):
    """A step could not be done; the message says why and what to do."""


class ChildExited(Exception):
    """One of the processes this run started has exited."""

    def __init__(self, child: Child) -> None:
        super().__init__(child.service.name)
        self.child = child


class Stopped(Exception):
    """Ctrl-C (SIGINT) or SIGTERM."""


_START = time.monotonic()


def elapsed() -> str:
    seconds = int(time.monotonic() - _START)
    return f"{seconds // 60}:{seconds % 60:02d}"


def say(text: str) -> None:
    print(f"[run {elapsed()}] {text}", flush=True)


def step(number: int, text: str) -> None:
    say(f"step {number}/{STEPS}: {text}")


def shown(path: Path) -> str:
    """A path as the user would type it from the checkout."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# -- ports ---------------------------------------------------------------------------------------


def port_base(environ: Mapping[str, str]) -> int:
    raw = environ.get("PORT_BASE", "").strip() or "3001"
    if not raw.isdigit() or not 1024 <= int(raw) <= 65535 - len(SERVICES):
        raise RunFailed(f"PORT_BASE must be a port number from 1024 to {65535 - len(SERVICES)}, got {raw!r}")
    return int(raw)


def busy_ports(ports: Mapping[str, int]) -> list[tuple[str, int]]:
    """The ports something already listens on (bound as the services bind them, SO_REUSEADDR)."""
    busy = []
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append((name, port))
    return busy


def check_ports(base: int) -> None:
    busy = busy_ports({s.name: base + s.offset for s in SERVICES})
    if busy:
        port = busy[0][1]
        listed = ", ".join(f"{number} ({name})" for name, number in busy)
        raise RunFailed(
            f"port(s) in use: {listed}. Is an earlier `make run` still running? Stop it with Ctrl-C"
            f" in its terminal; `ss -ltnp 'sport = :{port}'` names the process that holds {port}."
            f" Or move this run: PORT_BASE={base + 1000} make run"
            f" (ports {base + 1000}-{base + 1000 + len(SERVICES) - 1})."
        )


# -- infrastructure, keys, administrator ----------------------------------------------------------

PIECES = {"kafka": "LOCAL_KAFKA", "postgres": "LOCAL_POSTGRES", "smtp": "LOCAL_SMTP"}


def running(piece: str) -> bool:
    return (
        subprocess.run(["bash", f"infra/{piece}.sh", "status"], cwd=ROOT, capture_output=True).returncode == 0
    )


def infrastructure() -> tuple[dict[str, str], list[str]]:
    """Start what is missing; returns the variables and the pieces this run started."""
    before = {piece for piece in PIECES if running(piece)}
    if subprocess.run(["bash", "infra/up.sh"], cwd=ROOT).returncode != 0:
        raise RunFailed("the infrastructure did not start; the [infra] lines above say why")
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
        write_secret(private, pem := new_private_pem())
        public.write_text(public_pem(pem))
    return {"JWT_PRIVATE_KEY_FILE": str(private), "JWT_PUBLIC_KEY_FILE": str(public)}


@dataclass(frozen=True)
class Admin:
    """The administrator the demo logs in as, and where the credentials came from."""

    email: str
    password: str
    given: bool  # from ADMIN_EMAIL/ADMIN_PASSWORD (else from .run/admin, or generated into it)

    def env(self) -> dict[str, str]:
        return {"ADMIN_EMAIL": self.email, "ADMIN_PASSWORD": self.password}


def admin_credentials(environ: Mapping[str, str] = os.environ) -> Admin:
    """ADMIN_EMAIL/ADMIN_PASSWORD when given, else what .run/admin holds (created with a random
    password the first time). Given ones are written to .run/admin once a login has shown that the
    database holds them (`keep_admin`), so a later run without them uses the same."""
    file = RUN / "admin"
    given_email = environ.get("ADMIN_EMAIL", "").strip()
    given_password = environ.get("ADMIN_PASSWORD", "")
    if not file.exists() and not given_password:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_secret(file, f"{given_email or 'admin@example.com'}\n{secrets.token_urlsafe(12)}\n")
    stored = file.read_text().split("\n") if file.exists() else []
    stored_email = stored[0].strip() if stored and stored[0].strip() else "admin@example.com"
    stored_password = stored[1] if len(stored) > 1 else ""
    return Admin(
        email=given_email or stored_email,
        password=given_password or stored_password,
        given=bool(given_email or given_password),
    )


def keep_admin(admin: Admin) -> None:
    write_secret(RUN / "admin", f"{admin.email}\n{admin.password}\n")


def admin_mismatch(admin: Admin, own_database: bool, schema: str) -> str:
    """Why the login was refused, and the ways out."""
    admin_file = shown(RUN / "admin")
    if admin.given:
        what, earlier = "the ADMIN_PASSWORD given", "from other credentials"
    else:
        what, earlier = f"the password in {admin_file}", "(ADMIN_EMAIL/ADMIN_PASSWORD given then?)"
    lines = [
        f"login refused: the database holds no administrator {admin.email} with {what}.",
        "  The security service creates the first administrator from ADMIN_EMAIL/ADMIN_PASSWORD only",
        f"  while it has no user at all; this database got its users in an earlier run, {earlier}.",
    ]
    if admin.given and (RUN / "admin").exists():
        lines.append(f"  - plain `make run` uses the credentials that worked last, kept in {admin_file};")
    lines.append(
        "  - or give that administrator's: ADMIN_EMAIL=... ADMIN_PASSWORD=... make run"
        f" ({admin_file} keeps them);"
    )
    if own_database:
        lines.append(
            "  - or start afresh: `make clean` (stops the local Kafka, PostgreSQL and SMTP sink, deletes"
            " .run/: the database, the topics, the keys), then `make run`."
        )
    else:
        lines.append(
            f"  - or start afresh: drop the schema `{schema}` of your DATABASE_URL (`make clean` does not"
            " touch a database it did not create), then `make run`."
        )
    return "\n".join(lines)


# -- the processes --------------------------------------------------------------------------------


@dataclass
class Child:
    service: Service
    port: int
    proc: asyncio.subprocess.Process
    log: Path
    log_start: int  # the log's size before this run: its tail after that is this run's

    def last_lines(self, count: int = LOG_LINES) -> list[str]:
        try:
            with open(self.log, "rb") as file:
                file.seek(self.log_start)
                text = file.read().decode(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-count:]

    def how_it_ended(self) -> str:
        code = self.proc.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


def links(service: Service, base: int) -> dict[str, str]:
    """Where the console finds the security service (sign-in), the worker (its figures) and the
    notifications API (the tables)."""
    if service.name != "console":
        return {}
    port = {s.name: base + s.offset for s in SERVICES}
    return {
        "SECURITY_URL": f"http://127.0.0.1:{port['security']}",
        "WORKER_URLS": f"http://127.0.0.1:{port['notifications-worker']}",
        "NOTIFICATIONS_URL": f"http://127.0.0.1:{port['notifications']}",
    }


async def start_children(env: Mapping[str, str], base: int) -> list[Child]:
    logs = RUN / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children = []
    for service in SERVICES:
        port = base + service.offset
        log = logs / f"{service.name}.log"
        with open(log, "ab") as out:
            out.write(f"--- make run, {datetime.now():%Y-%m-%d %H:%M:%S} ---\n".encode())
            out.flush()
            start = log.stat().st_size
            proc = await asyncio.create_subprocess_exec(
                PY,
                *service.args,
                cwd=ROOT,
                env={**env, **links(service, base), service.port_variable: str(port)},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        children.append(Child(service, port, proc, log, start))
        say(f"  {service.name}: started, pid {proc.pid}, port {port}, log {shown(log)}")
    return children


async def watched(work: Awaitable[T], children: list[Child], stop: asyncio.Event) -> T:
    """`work`, while watching the children: a child that exits ends it at once (ChildExited), and
    so does Ctrl-C (Stopped)."""
    task = asyncio.ensure_future(work)
    exits = {asyncio.ensure_future(child.proc.wait()): child for child in children}
    stopped = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({task, stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
    for future in pending:
        future.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for future, child in exits.items():
        if future in done:
            raise ChildExited(child)
    if stopped in done:
        raise Stopped
    return task.result()


async def wait_healthy(session: aiohttp.ClientSession, child: Child) -> None:
    deadline = time.monotonic() + HEALTH_SECONDS
    url = f"http://127.0.0.1:{child.port}/health"
    while time.monotonic() < deadline:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=3)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.3)
    tail = "\n".join(f"    | {line}" for line in child.last_lines())
    raise RunFailed(
        f"{child.service.name} did not answer {url} within {HEALTH_SECONDS} s;"
        f" the last lines of {shown(child.log)}:\n{tail}"
    )


async def all_healthy(session: aiohttp.ClientSession, children: list[Child]) -> None:
    """Wait for every /health; a line for each process as it answers, and every 10 s a line for
    those still starting."""
    began = time.monotonic()
    waiting = {asyncio.ensure_future(wait_healthy(session, child)): child for child in children}
    try:
        while waiting:
            done, _ = await asyncio.wait(waiting, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                names = ", ".join(child.service.name for child in waiting.values())
                say(f"  still starting: {names} ({time.monotonic() - began:.0f} s)")
            for future in done:
                child = waiting.pop(future)
                future.result()
                say(
                    f"  {child.service.name} ready ({len(children) - len(waiting)}/{len(children)}) after"
                    f" {time.monotonic() - began:.1f} s: http://127.0.0.1:{child.port}/health"
                )
    finally:
        for future in waiting:
            future.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


# -- login and the demo ---------------------------------------------------------------------------


async def login(
    session: aiohttp.ClientSession, base: int, admin: Admin, own_database: bool, schema: str
) -> str:
    url = f"http://127.0.0.1:{base + 3}/login"
    async with session.post(url, json={"email": admin.email, "password": admin.password}) as resp:
        answer = await resp.json(content_type=None)
        retry_after = resp.headers.get("Retry-After", "?")
    say(f"POST {url} as {admin.email} -> {resp.status}")
    if resp.status == 401:
        raise RunFailed(admin_mismatch(admin, own_database, schema))
    if resp.status == 429:
        raise RunFailed(
            f"too many failed logins for {admin.email}: wait {retry_after} s, or forget them with"
            f" `set -a; . {shown(RUN / 'env')}; .venv/bin/python -m security unlock {admin.email}`"
        )
    if resp.status != 201:
        raise RunFailed(f"the login failed: {resp.status} {answer}")
    if admin.given:
        keep_admin(admin)
        say(f"  ADMIN_EMAIL/ADMIN_PASSWORD work; kept in {shown(RUN / 'admin')} for the next runs")
    token: str = answer["jwt"]
    write_secret(RUN / "token", token + "\n")
    say(f"  token in {shown(RUN / 'token')}, valid until {answer.get('expires_at')}")
    return token


async def call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as resp:
        answer = await resp.json(content_type=None)
        say(f"{method} {url} -> {resp.status}")
        if resp.status >= 400:
            raise RunFailed(f"demo step failed: {method} {url} -> {resp.status} {answer}")
        return answer


async def demo(session: aiohttp.ClientSession, env: Mapping[str, str], base: int, token: str) -> None:
    c, o = f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"
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
    say(f"order {order['id']} placed; waiting for the invoice email (at most 60 s)")
    if "SMTP_SINK_DIR" not in env:
        say(f"mail goes to {env.get('SMTP_HOST')}:{env.get('SMTP_PORT')}; see your SMTP server")
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in sorted(set(mail_dir.glob("*.eml")) - before):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if "po002" in str(message["Subject"]):
                say(f"invoice email to {message['To']}: {message['Subject']!r}")
                say(f"  file: {shown(path)}")
                return
        await asyncio.sleep(0.3)
    say("no invoice email within 60 s; see .run/logs/notifications-worker.log")


def summary(children: list[Child], infra: Mapping[str, str], admin: Admin) -> None:
    say(f"ready after {elapsed()}:")
    for child in children:
        api = child.service.name not in ("notifications-worker", "console")
        extra = ", API document /openapi.json" if api else ""
        print(f"    {child.service.name:<21} http://127.0.0.1:{child.port:<6} {child.service.what}{extra}")
    print(f"    logs                  {shown(RUN / 'logs')}/<process>.log")
    local = [piece for piece, flag in PIECES.items() if infra.get(flag) == "1"]
    if local:
        print(f"                          and under {shown(RUN)}/: {', '.join(local)}")
    if "SMTP_SINK_DIR" in infra:
        print(f"    emails                {shown(Path(infra['SMTP_SINK_DIR']))}/*.eml")
    print(f"    administrator         {admin.email}, password in {shown(RUN / 'admin')}")
    print(f"    token                 {shown(RUN / 'token')}; try:")
    print(
        f'      curl -H "Authorization: Bearer $(cat {shown(RUN / "token")})"'
        f" http://127.0.0.1:{children[0].port}/organizations"
    )
    print(f"    Kafka                 {infra.get('BOOTSTRAP_SERVERS')}; read a topic:")
    prefix = os.environ.get("KAFKA_TOPIC_PREFIX")
    print(
        f"      BOOTSTRAP_SERVERS={infra.get('BOOTSTRAP_SERVERS')}"
        + (f" KAFKA_TOPIC_PREFIX={prefix}" if prefix else "")
        + " .venv/bin/python -m kafka_integration tail orders"
    )
    if "DATABASE_URL" in infra:
        print(f"    PostgreSQL            {infra['DATABASE_URL'].replace(':postgres@', ':***@')}")
    print(f"    everything's address  {shown(RUN / 'env')}", flush=True)


# -- the run --------------------------------------------------------------------------------------


def report_exit(child: Child) -> None:
    say(
        f"{child.service.name} (pid {child.proc.pid}) {child.how_it_ended()};"
        f" the last lines of {shown(child.log)}:"
    )
    for line in child.last_lines():
        print(f"    | {line}")
    say("stopping the other processes; the run ends with status 1")


async def stop_children(children: list[Child]) -> None:
    for child in reversed(children):
        if child.proc.returncode is None:
            child.proc.terminate()
    for child in reversed(children):
        try:
            await asyncio.wait_for(child.proc.wait(), 15)
        except TimeoutError:
            child.proc.kill()
            await child.proc.wait()


async def run(args: argparse.Namespace) -> int:
    base = port_base(os.environ)
    check_ports(base)
    step(1, "Kafka, PostgreSQL and the SMTP sink (what BOOTSTRAP_SERVERS, DATABASE_URL, SMTP_HOST leave out)")
    infra, started = infrastructure()
    children: list[Child] = []
    try:
        step(2, f"token signing keys ({shown(RUN / 'jwt')}) and the first administrator")
        admin = admin_credentials()
        env = {
            **os.environ,
            **infra,
            **signing_keys(),
            **admin.env(),
            "MATERIALIZER_STATE_DIR": os.environ.get("MATERIALIZER_STATE_DIR", str(RUN / "materializer")),
        }
        say(f"  administrator {admin.email} ({'given' if admin.given else 'from ' + shown(RUN / 'admin')})")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with aiohttp.ClientSession() as session:
            step(
                3,
                f"the four services, the worker and the console, on ports {base}-{base + len(SERVICES) - 1}",
            )
            children = await start_children(env, base)
            await watched(all_healthy(session, children), children, stop)
            step(4, f"log in as {admin.email}")
            own_database = infra.get("LOCAL_POSTGRES") == "1"
            schema = os.environ.get("DATABASE_SCHEMA") or "security"
            token = await watched(login(session, base, admin, own_database, schema), children, stop)
            if args.no_demo:
                step(5, "the seed's demo: skipped (--no-demo)")
            else:
                step(5, "the seed's demo: two organizations, two customers, a rename, an order")
                await watched(demo(session, env, base, token), children, stop)
            summary(children, infra, admin)
            if args.exit_after_demo:
                return 0
            say("running, and watching the six processes; Ctrl-C stops everything this run started")
            await watched(asyncio.get_running_loop().create_future(), children, stop)
    except ChildExited as exc:
        report_exit(exc.child)
        return 1
    except RunFailed as exc:
        say(str(exc))
        return 1
    except Stopped:
        say("stopping (Ctrl-C)")
    finally:
        await stop_children(children)
        for piece in started:
            subprocess.run(["bash", f"infra/{piece}.sh", "stop"], cwd=ROOT, check=False)
        say("stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="infra/run.py",
        description="The whole system on this machine (what `make run` runs), then the seed's demo.",
        epilog="PORT_BASE (3001) moves the six ports; BOOTSTRAP_SERVERS, DATABASE_URL and SMTP_HOST"
        " use your own Kafka, PostgreSQL and SMTP server; ADMIN_EMAIL/ADMIN_PASSWORD the first"
        " administrator; RUN_DIR the state folder (.run).",
    )
    parser.add_argument("--no-demo", action="store_true", help="start everything, log in, skip the demo")
    parser.add_argument("--exit-after-demo", action="store_true", help="stop everything after the demo")
    args = parser.parse_args()
    try:
        return asyncio.run(run(args))
    except RunFailed as exc:  # before anything was started
        say(str(exc))
        return 1
    except KeyboardInterrupt:  # Ctrl-C while the infrastructure starts
        say("interrupted; `make infra-down` stops what infra/up.sh had started")
        return 130


if __name__ == "__main__":
    sys.exit(main())
