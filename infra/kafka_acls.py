"""Who may do what on the secured local broker (KAFKA_SECURITY=sasl_ssl bash infra/kafka.sh start).

    python infra/kafka_acls.py ready DIR   # exit 0 when the broker answers the admin over SASL_SSL
    python infra/kafka_acls.py apply DIR   # create the ACLs below (as the super user `admin`)

DIR is the broker's folder (.run/kafka-secured): client.env and credentials are read from it.

The rules, one principal per process (User:<name>, the same for PLAIN and SCRAM):
- each service writes (and may create) only its own topics; only `security` writes `users`,
  `grants`, `revocations` and `api_keys`, so no other principal can put a tombstone on a
  revocation or publish an API key the notifications API would accept;
- readers read, and nothing more, the topics they keep views or tables of;
- the notifications worker reads what it joins and writes only its output (`orders_created`)
  and the dead letters; its consumer group and transactional ids (`<group>.<topic>.<partition>`)
  are its own, and so are the notifications API's (`notifications-api`); so are the changelogs
  of its parked records (`<group>-<stream topic>-parked`, a PREFIXED `<group>-` topic ACL);
- `admin` is a super user (the broker's own principal too).

Topic names are LITERAL patterns on the physical names, `KAFKA_TOPIC_PREFIX` + logical name, with
the prefix written in client.env when the broker started: a secured cluster serves one prefix
(one tenant, one test run). A per-test prefix, as the plaintext suite uses, would need an ACL per
test; the secured suite uses the one prefix of its run instead. Groups are LITERAL and
transactional ids PREFIXED (`<group>.`): with another CONSUMER_GROUP, grant that name.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest

from kafka_integration import KafkaSettings

# Kafka's enums (org.apache.kafka.common.acl / resource)
TOPIC, GROUP, TRANSACTIONAL_ID = 2, 3, 5
LITERAL, PREFIXED = 3, 4
READ, WRITE, CREATE, DESCRIBE = 3, 4, 5, 8
ALLOW = 3

ENTITIES_OF_CUSTOMERS = ("organizations", "customers", "organization_associations")


@dataclass(frozen=True)
class Access:
    writes: tuple[str, ...] = ()  # topics it produces to (and may create)
    reads: tuple[str, ...] = ()  # topics it reads
    group: str = ""  # its consumer group (also the stem of its transactional ids)
    changelogs: bool = False  # it owns topics named `<group>-...` (the materializer's parked records)


ACCESS: dict[str, Access] = {
    "security": Access(writes=("users", "grants", "revocations", "api_keys"), reads=("revocations",)),
    "customers": Access(writes=ENTITIES_OF_CUSTOMERS, reads=("revocations",)),
    "orders": Access(writes=("orders", "invoices"), reads=(*ENTITIES_OF_CUSTOMERS, "revocations")),
    "notifications": Access(  # the API: the tables it serves, and dead letters of poison rows
        writes=("notifications_dead_letters",),
        reads=("organizations", "customers", "orders_created", "revocations", "api_keys"),
        group="notifications-api",
    ),
    "notifications-worker": Access(
        writes=("orders_created", "notifications_dead_letters"),
        reads=(*ENTITIES_OF_CUSTOMERS, "orders", "invoices", "orders_created"),
        group="notifications",
        changelogs=True,
    ),
}


def acls(prefix: str) -> list[tuple[int, str, int, str, int]]:
    """(resource type, name, pattern type, principal, operation) to allow."""
    out = []
    for user, access in ACCESS.items():
        principal = f"User:{user}"
        for topic in access.writes:
            out += [(TOPIC, prefix + topic, LITERAL, principal, op) for op in (WRITE, CREATE, DESCRIBE)]
        for topic in access.reads:
            out += [(TOPIC, prefix + topic, LITERAL, principal, op) for op in (READ, DESCRIBE)]
        if access.group:
            out += [(GROUP, access.group, LITERAL, principal, op) for op in (READ, DESCRIBE)]
            out += [
                (TRANSACTIONAL_ID, f"{access.group}.", PREFIXED, principal, op) for op in (WRITE, DESCRIBE)
            ]
        if access.changelogs:
            out += [
                (TOPIC, f"{prefix}{access.group}-", PREFIXED, principal, op)
                for op in (READ, WRITE, CREATE, DESCRIBE)
            ]
    return out


def admin_settings(folder: Path) -> KafkaSettings:
    env = dict(line.split("=", 1) for line in (folder / "client.env").read_text().splitlines() if "=" in line)
    users = dict(line.split(":", 1) for line in (folder / "credentials").read_text().splitlines() if line)
    return KafkaSettings.from_env(
        {**env, "SASL_USERNAME": "admin", "SASL_PASSWORD": users["admin"]}, client_id="infra-acls"
    )


async def ready(settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), request_timeout_ms=3000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


async def apply(settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        for resource, name, pattern, principal, operation in acls(settings.topic_prefix):
            request = CreateAclsRequest(resource, name, pattern, principal, "*", operation, ALLOW)
            response = await admin._send_request(request)  # aiokafka has no create_acls yet
            for error_code, message in response.creation_responses:
                if error_code:
                    raise for_code(error_code)(f"ACL {principal} {operation} on {name}: {message}")
    finally:
        await admin.close()
    print(f"[infra] {len(acls(settings.topic_prefix))} ACLs for {len(ACCESS)} principals", file=sys.stderr)


def main() -> None:
    command, folder = sys.argv[1], Path(sys.argv[2])
    settings = admin_settings(folder)
    asyncio.run({"ready": ready, "apply": apply}[command](settings))


if __name__ == "__main__":
    main()
