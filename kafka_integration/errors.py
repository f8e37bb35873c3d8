"""Errors of the publishing library.

KafkaIntegrationError        any failure of this package
├── NotStarted               a producer or relay used before start() or after stop()
├── ConfigError              the Kafka variables do not make a valid client configuration
└── AccessRefused            the broker refused this client's TLS or SASL credentials
"""

from __future__ import annotations


class KafkaIntegrationError(Exception):
    """Any failure of kafka_integration."""


class NotStarted(KafkaIntegrationError):
    """A producer or relay was used before start() or after stop()."""


class ConfigError(KafkaIntegrationError, ValueError):
    """The Kafka variables do not make a valid client configuration."""


class AccessRefused(KafkaIntegrationError):
    """The broker refused this client's TLS or SASL credentials: waiting will not help."""
