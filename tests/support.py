"""Helpers for tests against the real broker, database and SMTP sink."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from kafka_integration import KafkaSettings, TopicMetadata
from kafka_integration.reading import records_to_end

ROOT = Path(__file__).resolve().parent.parent

# How long a test waits for something the system does on its own (an event relayed, a view read,
# an email sent, a worker's progress) before it calls that a failure. Each wait ends as soon as
# its condition holds, so the bound costs nothing when the test passes; it only has to be beyond
# what the slowest machine the suite runs on needs: a step of a second or two on a quiet 2-core
# machine takes several times that with both cores busy (issue 19), close to the 10-30 s the
# waits had. A wait that must stay short says so with its own named constant.
PATIENCE = 60.0


def patient_parties(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the orders service's bounds on reading the parties' topics (orders/parties.py)
    raised to PATIENCE. Read-your-writes across services ("created there, accepted here at once";
    "deleted there, refused here by the very next order") holds only if the view reads to the
    broker's end within the bound: 5 s for an unknown id (then 503), 1 s for a known one (then
    accepted on the stale view, the documented fallback), and a busy machine taking longer would
    fail such a test. With Kafka up, a bound is reached only if reading is slow, never waited out;
    a test that stops Kafka and relies on the fallback sets the production bounds itself."""
    return {**env, "KNOWN_PARTIES_WAIT_SECONDS": str(PATIENCE), "KNOWN_PARTIES_FRESH_SECONDS": str(PATIENCE)}


def start_infra(kafka_nodes: int = 1) -> dict[str, str]:
    """Start (or find) the local Kafka (one node, or the three-node cluster), PostgreSQL and SMTP
    sink with the project's own script, unless the environment already points at them; returns
    the variables to use."""
    given = {
        k: os.environ[k] for k in ("BOOTSTRAP_SERVERS", "DATABASE_URL", "SMTP_HOST") if os.environ.get(k)
    }
    if len(given) == 3:  # everything is configured from outside: start nothing
        extra = {k: os.environ[k] for k in ("SMTP_PORT", "SMTP_SINK_DIR", "LOCAL_KAFKA") if os.environ.get(k)}
        return {"SMTP_PORT": "25", **given, **extra}
    script_env = {**os.environ, "KAFKA_NODES": str(kafka_nodes)}
    subprocess.run(["bash", str(ROOT / "infra" / "up.sh")], check=True, cwd=ROOT, env=script_env)
    env: dict[str, str] = {}
    written = "env.cluster" if kafka_nodes == 3 else "env"  # see infra/up.sh
    for line in (ROOT / ".run" / written).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    for key in ("BOOTSTRAP_SERVERS", "DATABASE_URL", "SMTP_HOST", "SMTP_PORT"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict[str, Any] | None
    headers: dict[str, str]
    timestamp: int = 0  # ms since the epoch (the producer's create time)


async def read_topic(
    settings: KafkaSettings, topic: str, *, min_count: int = 0, timeout: float = PATIENCE
) -> list[Message]:
    """Every message of a (logical) topic from the beginning up to its current end; waits up to
    `timeout` for at least `min_count` messages (with the default `min_count` of 0: reads what
    is there now, without waiting)."""
    name = settings.topic(topic)
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            out = await _read_to_end(settings, consumer, topic, name)
            if len(out) >= min_count or loop.time() > deadline:
                return out
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


async def _read_to_end(
    settings: KafkaSettings, consumer: AIOKafkaConsumer, topic: str, name: str
) -> list[Message]:
    async with TopicMetadata(settings) as metadata:  # the topic may be new
        tps = await metadata.partitions(name)
    out = [_message(topic, r) async for r in records_to_end(consumer, tps)]
    out.sort(key=lambda m: (m.partition, m.offset))
    return out


def _message(topic: str, r: Any) -> Message:
    return Message(
        topic=topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key.decode() if r.key is not None else None,
        value=orjson.loads(r.value) if r.value is not None else None,
        headers={k: v.decode() for k, v in r.headers},
        timestamp=r.timestamp,
    )


def env_with(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {**base, **extra}


def local_kafka(env: Mapping[str, str]) -> bool:
    return env.get("LOCAL_KAFKA") == "1"


def kafka_script(command: str) -> None:
    """Stop or start the project's own broker (data is kept across a stop)."""
    subprocess.run(["bash", str(ROOT / "infra" / "kafka.sh"), command], check=True, cwd=ROOT)


_PARSED: dict[Path, Any] = {}  # sink files never change once renamed into place: parse each once


def mails(env: Mapping[str, str], to: str | None = None, containing: str | None = None) -> list[Any]:
    """Messages the SMTP sink received (oldest first, every copy: a repeated Message-ID counts
    again), parsed; optionally only those to `to`, and only those whose bytes contain
    `containing` (e.g. the test's MESSAGE_ID_DOMAIN)."""
    import email
    from email import policy

    folder = Path(env["SMTP_SINK_DIR"])
    out = []
    for path in sorted(folder.glob("*.eml")):
        message = _PARSED.get(path)
        if message is None:
            raw = path.read_bytes()
            if any(part is not None and part.encode() not in raw for part in (to, containing)):
                continue  # cheap: the sink may hold thousands of other tests' messages
            message = _PARSED[path] = email.message_from_bytes(raw, policy=policy.default)
        if (to is None or message["To"] == to) and (containing is None or containing in message.as_string()):
            out.append(message)
    return out


def arrivals(env: Mapping[str, str], containing: str) -> dict[str, list[int]]:
    """When the SMTP sink received each copy (ns since the epoch), per Message-ID, for the
    Message-IDs containing `containing` (e.g. the test's MESSAGE_ID_DOMAIN): every arrival, a
    repeat included, oldest first."""
    log = Path(env["SMTP_SINK_DIR"]) / "received.log"
    times: dict[str, list[int]] = {}
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            parts = line.split(" ")
            if len(parts) >= 2 and containing in parts[1] and parts[0].isdecimal():
                times.setdefault(parts[1], []).append(int(parts[0]))
    return times


def copies(env: Mapping[str, str], containing: str) -> dict[str, int]:
    """Copies the SMTP sink received per Message-ID, for the Message-IDs containing `containing`
    (e.g. the test's MESSAGE_ID_DOMAIN): every arrival counts, a repeat included."""
    return {mid: len(times) for mid, times in arrivals(env, containing).items()}


def duplicates(env: Mapping[str, str], containing: str) -> dict[str, int]:
    """The Message-IDs (containing `containing`) the sink received more than once, with their copies."""
    return {mid: n for mid, n in copies(env, containing).items() if n > 1}


async def wait_for_mails(
    env: Mapping[str, str], to: str, count: int = 1, timeout: float = PATIENCE
) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await asyncio.to_thread(mails, env, to)
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.2)


def write_signing_keys(folder: Path) -> dict[str, str]:
    """A fresh Ed25519 key pair as PEM files; the variables that name them."""
    from security.tokens import new_private_pem, public_pem

    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / "private.pem", folder / "public.pem"
    private.write_text(pem := new_private_pem())
    public.write_text(public_pem(pem))
    return {"JWT_PRIVATE_KEY_FILE": str(private), "JWT_PUBLIC_KEY_FILE": str(public)}


@dataclass
class Tokens:
    """Tokens as the security service signs them, for tests of the services that check them."""

    private_key_file: str

    def make(
        self,
        *,
        user_id: int = 1,
        admin: bool = False,
        orgs: Mapping[int, str] | None = None,
        ttl: int = 600,
        key_file: str | None = None,
        **claims: Any,
    ) -> str:
        import time

        import jwt

        now = int(time.time())
        body = {
            "iss": "security",
            "aud": "kafka-rails",
            "sub": str(user_id),
            "email": f"user{user_id}@example.com",
            "admin": admin,
            "orgs": {str(k): v for k, v in (orgs or {}).items()},
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(body, Path(key_file or self.private_key_file).read_text(), algorithm="EdDSA")

    def admin(self) -> str:
        return self.make(admin=True)

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


async def assert_rejects_bad_tokens(
    client: Any, method: str, path: str, tokens: Tokens, other_key_file: str, body: Any = None
) -> None:
    """No token, a malformed one, a forged one (claims changed after signing), an expired one and
    one signed with another key: each gets 401 with a JSON body, and the handler never runs."""
    import base64

    good = tokens.admin()
    head, claims, signature = good.split(".")
    padded = claims + "=" * (-len(claims) % 4)
    forged_claims = orjson.loads(base64.urlsafe_b64decode(padded))
    forged_claims["sub"] = "999"
    forged = ".".join(
        [head, base64.urlsafe_b64encode(orjson.dumps(forged_claims)).rstrip(b"=").decode(), signature]
    )
    cases = {
        "none": {},
        "not a bearer": {"Authorization": f"Basic {good}"},
        "malformed": Tokens.header("not-a-jwt"),
        "forged": Tokens.header(forged),
        "expired": Tokens.header(tokens.make(admin=True, ttl=-60)),
        "other key": Tokens.header(tokens.make(admin=True, key_file=other_key_file)),
        "wrong audience": Tokens.header(tokens.make(admin=True, aud="someone-else")),
        "none algorithm": Tokens.header(
            ".".join(
                [
                    base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode(),
                    claims,
                    "",
                ]
            )
        ),
    }
    for name, headers in cases.items():
        resp = await client.request(method, path, json=body, headers={"Authorization": "", **headers})
        assert resp.status == 401, f"{name}: {resp.status}"
        answer = await resp.json()
        assert answer["type"] == "urn:problem-type:unauthorized", name


async def wait_until(check: Any, timeout: float = PATIENCE, interval: float = 0.05) -> None:
    """Await `check()` until it is true; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{getattr(check, '__name__', check)} still false after {timeout}s")
        await asyncio.sleep(interval)


def base_url(client: Any) -> str:
    """Where a served test client or server answers, with no trailing slash (as services' URLs
    are given in their variables)."""
    return str(client.make_url("")).rstrip("/")


async def wait_for_status(
    client: Any, path: str, status: int, headers: Mapping[str, str] | None = None
) -> None:
    """Repeat `GET path` (with `headers`) until it answers `status`: a credential accepted or
    refused once the service has read the event that grants or revokes it."""

    async def answered() -> bool:
        return int((await client.get(path, headers=headers)).status) == status

    answered.__name__ = f"GET {path} answering {status}"
    await wait_until(answered)


TEST_PREFIX = re.compile(r"^t_[0-9a-f]{10}\.")  # unique("t_") + "." (tests/conftest.py's test_env)


async def delete_topics(env: Mapping[str, str], matching: Callable[[str], bool], settle: float = 0.0) -> int:
    """Delete the topics whose names `matching` accepts; how many. Each test makes its own topics
    (its prefix): left on the broker, thousands of partitions made every later test, and the
    broker's restart in tests/system, slower run after run. With `settle`, wait up to that many
    seconds until the broker no longer lists them (a sweep of thousands keeps its controller busy
    for a while: the tests start after that). Best effort: a broker that is down now keeps them
    until the next sweep."""
    admin = AIOKafkaAdminClient(**KafkaSettings.from_env(env, client_id="tests-cleanup").client_kwargs())
    try:
        async with asyncio.timeout(30 + settle):
            await admin.start()
            names = [name for name in await admin.list_topics() if matching(name)]
            for start in range(0, len(names), 500):
                await admin.delete_topics(names[start : start + 500])
            deadline = asyncio.get_running_loop().time() + settle
            while names and asyncio.get_running_loop().time() < deadline:
                if not set(names) & set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.5)
            return len(names)
    except Exception:  # TimeoutError included
        return 0
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
