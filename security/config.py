"""The security service's settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.auth import AuthSettings
from servicekit.config import Secret, env_bool, env_int, env_str
from servicekit.settings import ServiceConfig


class SecurityConfigError(RuntimeError):
    """The signing key is missing or unreadable, or a setting is out of range."""


@dataclass(frozen=True)
class LoginPolicy:
    """Failed logins slow down one (email, client address) pair, never the email everywhere, so
    no one can lock another user out. After `free_failures` failures of a pair, its next attempt
    is refused with 429 for `base_delay_seconds`, doubling with each further failure up to
    `max_delay_seconds`. A pair with no attempt for `forget_seconds` starts again from zero.
    The client address is the connection's peer; with `trust_forwarded_for` (behind a proxy
    that sets it) the last address of X-Forwarded-For. `hash_concurrency` bounds how many
    passwords are hashed or checked at once (each costs CPU and 64 MiB)."""

    free_failures: int = 5
    base_delay_seconds: int = 2
    max_delay_seconds: int = 15 * 60
    forget_seconds: int = 24 * 3600
    trust_forwarded_for: bool = False
    hash_concurrency: int = 4

    def delay_after(self, failures: int) -> int:
        """Seconds the pair waits after its `failures`-th failure (0 while under the limit)."""
        if failures < self.free_failures:
            return 0
        doublings = min(failures - self.free_failures, 30)
        return min(self.base_delay_seconds * (1 << doublings), self.max_delay_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LoginPolicy:
        policy = cls(
            free_failures=env_int(environ, "LOGIN_FREE_FAILURES", 5),
            base_delay_seconds=env_int(environ, "LOGIN_BASE_DELAY_SECONDS", 2),
            max_delay_seconds=env_int(environ, "LOGIN_MAX_DELAY_SECONDS", 15 * 60),
            forget_seconds=env_int(environ, "LOGIN_FORGET_SECONDS", 24 * 3600),
            trust_forwarded_for=env_bool(environ, "LOGIN_TRUST_FORWARDED_FOR", False),
            hash_concurrency=env_int(environ, "PASSWORD_HASH_CONCURRENCY", min(4, os.cpu_count() or 1)),
        )
        if (
            min(
                policy.free_failures,
                policy.base_delay_seconds,
                policy.max_delay_seconds,
                policy.forget_seconds,
                policy.hash_concurrency,
            )
            < 1
        ):
            raise SecurityConfigError(
                "LOGIN_FREE_FAILURES, LOGIN_BASE_DELAY_SECONDS, LOGIN_MAX_DELAY_SECONDS,"
                " LOGIN_FORGET_SECONDS and PASSWORD_HASH_CONCURRENCY must be > 0"
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
class Config(ServiceConfig):
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
            **cls.common(environ, name="security", port=3004, auth=auth),
            tokens=tokens,
            login=LoginPolicy.from_env(environ),
            admin_email=env_str(environ, "ADMIN_EMAIL").lower(),
            admin_password=Secret(environ.get("ADMIN_PASSWORD", "")),
        )
