"""The security service's settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kafka_integration import KafkaSettings
from servicekit.app import HttpSettings
from servicekit.auth import AuthSettings
from servicekit.config import Secret, env_int, env_str
from servicekit.db import DatabaseSettings


class SecurityConfigError(RuntimeError):
    """The signing key is missing or unreadable, or a setting is out of range."""


@dataclass(frozen=True)
class LoginPolicy:
    """Failed logins: after `max_failures` for one email within `window_seconds`, every attempt
    for that email is refused with 429 for `lock_seconds` (the right password included)."""

    max_failures: int = 5
    window_seconds: int = 15 * 60
    lock_seconds: int = 15 * 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LoginPolicy:
        policy = cls(
            max_failures=env_int(environ, "LOGIN_MAX_FAILURES", 5),
            window_seconds=env_int(environ, "LOGIN_WINDOW_SECONDS", 15 * 60),
            lock_seconds=env_int(environ, "LOGIN_LOCK_SECONDS", 15 * 60),
        )
        if min(policy.max_failures, policy.window_seconds, policy.lock_seconds) < 1:
            raise SecurityConfigError(
                "LOGIN_MAX_FAILURES, LOGIN_WINDOW_SECONDS, LOGIN_LOCK_SECONDS must be > 0"
            )
        return policy


@dataclass(frozen=True)
class TokenSettings:
    """The private key tokens are signed with (PEM, PKCS8, Ed25519) and their lifetime."""

    private_key: Secret
    ttl_seconds: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TokenSettings:
        path = env_str(environ, "JWT_PRIVATE_KEY_FILE")
        if not path:
            raise SecurityConfigError("set JWT_PRIVATE_KEY_FILE to the PEM (PKCS8) Ed25519 signing key")
        try:
            pem = Path(path).read_text()
        except OSError as exc:
            raise SecurityConfigError(f"JWT_PRIVATE_KEY_FILE={path}: {exc}") from exc
        ttl = env_int(environ, "TOKEN_TTL_SECONDS", 3600)
        if ttl < 1:
            raise SecurityConfigError("TOKEN_TTL_SECONDS must be > 0")
        return cls(private_key=Secret(pem), ttl_seconds=ttl)


@dataclass(frozen=True)
class Config:
    http: HttpSettings
    db: DatabaseSettings
    kafka: KafkaSettings
    auth: AuthSettings
    tokens: TokenSettings
    login: LoginPolicy
    admin_email: str = ""
    admin_password: Secret = field(default=Secret(""))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        tokens = TokenSettings.from_env(environ)
        if env_str(environ, "JWT_PUBLIC_KEY_FILE") or env_str(environ, "JWT_PUBLIC_KEY"):
            auth = AuthSettings.from_env(environ)
        else:  # the security service can derive its verifying key from its signing key
            from security.tokens import public_pem

            auth = AuthSettings(public_key=public_pem(tokens.private_key.reveal()))
        return cls(
            http=HttpSettings.from_env(environ, default_port=3004),
            db=DatabaseSettings.from_env(environ, schema="security"),
            kafka=KafkaSettings.from_env(environ, client_id="security"),
            auth=auth,
            tokens=tokens,
            login=LoginPolicy.from_env(environ),
            admin_email=env_str(environ, "ADMIN_EMAIL").lower(),
            admin_password=Secret(environ.get("ADMIN_PASSWORD", "")),
        )
