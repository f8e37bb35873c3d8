"""Kafka client settings from the seed's variables (BOOTSTRAP_SERVERS, SECURITY_PROTOCOL, ...).

`client_kwargs()` is the one place a Kafka client of the project (producers, consumers, admin)
gets its connection, TLS and SASL settings from: build every client with it."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from kafka_integration.env import Secret, env_int, env_str
from kafka_integration.errors import ConfigError

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
# Kafka's default request limit (and the producer's max_request_size) is 1 MiB; an event is
# refused at write time above this, with room left for the record's framing and headers.
DEFAULT_MAX_EVENT_BYTES = 900 * 1024
_KAFKA_MAX_REQUEST = 1024 * 1024
_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
_MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the cluster. The seed's `.private_env` variables map one to one."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = Secret("")
    ssl_cafile: str = ""  # PEM file of the CA that signed the brokers' certificates; "": the system's
    client_id: str = "kafka-and-python"
    topic_prefix: str = ""
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    replication_factor: int = 1  # of the topics the services create (3 on a production cluster)
    min_insync_replicas: int = 1  # replicas that must have a write before acks=all answers

    @classmethod
    def from_env(cls, environ: Mapping[str, str], client_id: str = "kafka-and-python") -> KafkaSettings:
        # The seed writes `sasl_ssl`; aiokafka wants `SASL_SSL`.
        protocol = env_str(environ, "SECURITY_PROTOCOL", "PLAINTEXT").upper()
        mechanism = env_str(environ, "SASL_MECHANISM").upper()
        if protocol not in _PROTOCOLS:
            raise ConfigError(f"SECURITY_PROTOCOL must be one of {sorted(_PROTOCOLS)}, got {protocol!r}")
        if protocol.startswith("SASL_"):
            mechanism = mechanism or "PLAIN"
            if mechanism not in _MECHANISMS:
                raise ConfigError(f"SASL_MECHANISM must be one of {sorted(_MECHANISMS)}, got {mechanism!r}")
            if not env_str(environ, "SASL_USERNAME") or not env_str(environ, "SASL_PASSWORD"):
                raise ConfigError(f"SECURITY_PROTOCOL={protocol} needs SASL_USERNAME and SASL_PASSWORD")
        max_event_bytes = env_int(environ, "KAFKA_MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES)
        if not 1024 <= max_event_bytes < _KAFKA_MAX_REQUEST:
            raise ConfigError(
                f"KAFKA_MAX_EVENT_BYTES must be at least 1024 and under {_KAFKA_MAX_REQUEST}"
                f" (Kafka's request limit), got {max_event_bytes}"
            )
        cafile = env_str(environ, "SSL_CAFILE")
        if cafile and not Path(cafile).is_file():
            raise ConfigError(f"SSL_CAFILE={cafile!r} is not a readable file")
        return cls(
            bootstrap_servers=env_str(environ, "BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
            security_protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=env_str(environ, "SASL_USERNAME"),
            sasl_password=Secret(env_str(environ, "SASL_PASSWORD")),
            ssl_cafile=cafile,
            client_id=env_str(environ, "KAFKA_CLIENT_ID", client_id),
            topic_prefix=env_str(environ, "KAFKA_TOPIC_PREFIX"),
            replication_factor=env_int(environ, "KAFKA_REPLICATION_FACTOR", 1),
            max_event_bytes=max_event_bytes,
            min_insync_replicas=env_int(environ, "KAFKA_MIN_INSYNC_REPLICAS", 1),
        )

    def topic(self, name: str) -> str:
        """The physical topic name of a logical one (the prefix isolates tenants and test runs)."""
        return f"{self.topic_prefix}{name}"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by AIOKafkaProducer, AIOKafkaConsumer and the admin client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.security_protocol in {"SSL", "SASL_SSL"}:
            context: ssl.SSLContext = create_ssl_context(cafile=self.ssl_cafile or None)
            kwargs["ssl_context"] = context
        if self.security_protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.reveal()
        return kwargs
