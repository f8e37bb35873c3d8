"""The secured broker's ACLs (infra/kafka_acls.py) against the names the notifications processes
really use: every topic their topologies read or write, the changelogs of parked records, their
consumer group and transactional ids, built by the same code as at run time. No broker needed."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal

import pytest

from materializer import Topology
from materializer.runtime.parked_log import ParkedLog
from notifications import streams
from notifications.config import WorkerConfig, materializer_settings
from tests.support import ROOT

PREFIX = "secured."


@pytest.fixture(scope="module")
def acl() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("infra_kafka_acls", ROOT / "infra" / "kafka_acls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def allows(acl: ModuleType, principal: str, resource: int, name: str, operation: int) -> bool:
    for r, pattern, kind, who, op in acl.acls(PREFIX):
        if (r, who, op) != (resource, f"User:{principal}", operation):
            continue
        if (kind == acl.LITERAL and name == pattern) or (kind == acl.PREFIXED and name.startswith(pattern)):
            return True
    return False


async def _handler(*_: Any) -> None:
    return None


def _topology(role: Literal["api", "worker"]) -> Topology:
    if role == "api":
        return streams.api_topology()
    return streams.worker_topology(invoice=_handler, welcome=_handler, invitation=_handler)


PROCESSES = [("notifications-worker", "worker"), ("notifications", "api")]


@pytest.mark.parametrize(("principal", "role"), PROCESSES)
def test_each_name_a_notifications_process_uses_is_granted(
    acl: ModuleType, principal: str, role: str
) -> None:
    config = WorkerConfig.from_env({"KAFKA_TOPIC_PREFIX": PREFIX})
    settings = materializer_settings(config, role)  # type: ignore[arg-type]
    kafka = settings.kafka
    topology = _topology(role)  # type: ignore[arg-type]
    streams_read = sorted({j.stream.topic for j in topology.joins.values()})
    changelogs = [ParkedLog(kafka, settings.group_id).topic(t) for t in streams_read]
    reads = [kafka.topic(t) for t in sorted(topology.table_topics()) + streams_read] + changelogs
    writes = [kafka.topic(t) for t in sorted(topology.output_topics())] + changelogs
    if settings.dead_letter_topic:
        writes.append(kafka.topic(settings.dead_letter_topic))
    refused = [
        (name, op)
        for names, ops in (
            (reads, (acl.READ, acl.DESCRIBE)),
            (writes, (acl.WRITE, acl.DESCRIBE)),
            (changelogs, (acl.CREATE,)),  # created by the worker itself, as Kafka Streams does
        )
        for name in names
        for op in ops
        if not allows(acl, principal, acl.TOPIC, name, op)
    ]
    if topology.joins:
        refused += [
            (settings.group_id, op)
            for op in (acl.READ, acl.DESCRIBE)
            if not allows(acl, principal, acl.GROUP, settings.group_id, op)
        ]
        transactional_id = f"{settings.group_id}.{streams_read[0]}.0"
        refused += [
            (transactional_id, op)
            for op in (acl.WRITE, acl.DESCRIBE)
            if not allows(acl, principal, acl.TRANSACTIONAL_ID, transactional_id, op)
        ]
    assert refused == []


def test_the_changelog_grant_reaches_no_other_group_s_topics(acl: ModuleType) -> None:
    config = WorkerConfig.from_env({"KAFKA_TOPIC_PREFIX": PREFIX})
    api = materializer_settings(config, "api")
    # the API's group is the worker's with `-api`: its changelogs would fall under the worker's
    # `notifications-` prefix, but the API joins nothing, so it has none
    assert not _topology("api").joins
    other = ParkedLog(api.kafka, "other").topic("orders")
    assert not allows(acl, "notifications", acl.TOPIC, other, acl.WRITE)
    assert not allows(acl, "notifications-worker", acl.TOPIC, f"{PREFIX}other-orders-parked", acl.WRITE)
    assert not allows(acl, "notifications-worker", acl.TOPIC, "notifications-orders-parked", acl.WRITE)
