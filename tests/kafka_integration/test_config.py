"""The seed's `.private_env` variables become the matching aiokafka settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from kafka_integration import ConfigError, KafkaSettings

SEED_PRIVATE_ENV = {
    "BOOTSTRAP_SERVERS": "pkc-abc.eu-west-1.aws.confluent.cloud:9092",
    "SECURITY_PROTOCOL": "sasl_ssl",
    "SASL_MECHANISM": "PLAIN",
    "SASL_USERNAME": "BBBBBB",
    "SASL_PASSWORD": "CCCCCCC",
}


def test_seed_sasl_ssl_plain_becomes_aiokafka_settings() -> None:
    kwargs = KafkaSettings.from_env(SEED_PRIVATE_ENV).client_kwargs()
    assert kwargs["bootstrap_servers"] == "pkc-abc.eu-west-1.aws.confluent.cloud:9092"
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "PLAIN"
    assert kwargs["sasl_plain_username"] == "BBBBBB"
    assert kwargs["sasl_plain_password"] == "CCCCCCC"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_the_password_is_hidden_from_repr() -> None:
    assert "CCCCCCC" not in repr(KafkaSettings.from_env(SEED_PRIVATE_ENV))


def test_plaintext_by_default_has_no_sasl_or_ssl() -> None:
    kwargs = KafkaSettings.from_env({}).client_kwargs()
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in kwargs and "sasl_mechanism" not in kwargs


@pytest.mark.parametrize(
    "env",
    [
        {"SECURITY_PROTOCOL": "carrier_pigeon"},
        {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "GSSAPI", "SASL_USERNAME": "u"},
        {"SECURITY_PROTOCOL": "SASL_SSL"},
    ],
)
def test_invalid_settings_are_refused_with_a_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        KafkaSettings.from_env(env)


def test_ssl_cafile_names_the_ca_that_signed_the_brokers(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):  # the file is really loaded, not just stored
        KafkaSettings.from_env({**SEED_PRIVATE_ENV, "SSL_CAFILE": str(ca)}).client_kwargs()
    with pytest.raises(ConfigError, match="SSL_CAFILE"):
        KafkaSettings.from_env({**SEED_PRIVATE_ENV, "SSL_CAFILE": str(tmp_path / "missing.pem")})


def test_a_sasl_username_without_a_password_is_refused() -> None:
    with pytest.raises(ConfigError, match="SASL_PASSWORD"):
        KafkaSettings.from_env({**SEED_PRIVATE_ENV, "SASL_PASSWORD": ""})


def test_topics_are_created_with_the_replication_and_min_insync_replicas_of_the_settings() -> None:
    from kafka_integration import TopicSpec

    single = TopicSpec("orders").new_topic(KafkaSettings.from_env({}))
    assert single.replication_factor == 1 and "min.insync.replicas" not in single.topic_configs
    cluster = KafkaSettings.from_env({"KAFKA_REPLICATION_FACTOR": "3", "KAFKA_MIN_INSYNC_REPLICAS": "2"})
    topic = TopicSpec("orders").new_topic(cluster)
    assert topic.replication_factor == 3
    assert topic.topic_configs == {"cleanup.policy": "compact", "min.insync.replicas": "2"}
