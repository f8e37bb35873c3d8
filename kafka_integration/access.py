"""What the broker refuses: credentials at start, and writes the ACLs do not allow.

aiokafka reports a refused password only as "Unable to bootstrap" and retries, so a service with
the wrong password would wait forever looking like Kafka is down. `check_credentials` opens one
connection itself at start and turns a TLS or SASL refusal into `AccessRefused`, which stops the
process with the broker's own words; a broker that does not answer is not a refusal (it may be
down: the outbox keeps events until it is back). `refusal` names authorization errors, which no
amount of waiting fixes (only an ACL does).
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka import errors
from aiokafka.conn import create_conn

from kafka_integration.config import KafkaSettings
from kafka_integration.errors import AccessRefused

_REFUSED_AT_CONNECT = (
    errors.SaslAuthenticationFailed,
    errors.AuthenticationFailedError,
    errors.UnsupportedSaslMechanismError,
    errors.IllegalSaslStateError,
    ssl.SSLError,  # e.g. the broker's certificate is not signed by SSL_CAFILE's CA
)
_NOT_ALLOWED = (
    errors.TopicAuthorizationFailedError,
    errors.ClusterAuthorizationFailedError,
    errors.TransactionalIdAuthorizationFailed,
    errors.GroupAuthorizationFailedError,
)


def who(settings: KafkaSettings) -> str:
    """The identity a client presents, for messages (never the password)."""
    if settings.security_protocol.startswith("SASL_"):
        return f"SASL_USERNAME={settings.sasl_username!r} ({settings.sasl_mechanism})"
    return f"an unauthenticated {settings.security_protocol} client"


async def check_credentials(settings: KafkaSettings, timeout: float = 15.0) -> bool:
    """True once a bootstrap broker accepted TLS and SASL; False if none answered. Raises
    `AccessRefused` when one refused them. PLAINTEXT has nothing to refuse: True without asking."""
    if settings.security_protocol == "PLAINTEXT":
        return True
    kwargs = settings.client_kwargs()
    for address in settings.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            async with asyncio.timeout(timeout):
                conn = await create_conn(
                    host,
                    int(port),
                    client_id=settings.client_id,
                    ssl_context=kwargs.get("ssl_context"),
                    security_protocol=settings.security_protocol,
                    sasl_mechanism=kwargs.get("sasl_mechanism"),
                    sasl_plain_username=kwargs.get("sasl_plain_username"),
                    sasl_plain_password=kwargs.get("sasl_plain_password"),
                )
        except _REFUSED_AT_CONNECT as exc:
            raise AccessRefused(
                f"Kafka at {address.strip()} refused {who(settings)} over {settings.security_protocol}: "
                f"{exc} (check SASL_USERNAME, SASL_PASSWORD, SASL_MECHANISM and SSL_CAFILE)"
            ) from exc
        except (OSError, errors.KafkaError, TimeoutError):
            continue  # not answering is not refusing
        conn.close()
        return True
    return False


def refusal(exc: BaseException) -> bool:
    """Whether Kafka refused the operation to this principal (an ACL is missing)."""
    return isinstance(exc, _NOT_ALLOWED)
