"""Issuing tokens: JWTs signed with the service's Ed25519 key (EdDSA), verified by every service
with the public key (servicekit.auth). Claims:

    iss "security", aud "kafka-rails", sub "<user id>", email, admin (bool),
    orgs {"<organization id>": "member" | "viewer"}, iat, exp (iat + TOKEN_TTL_SECONDS), jti (uuid4 hex)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servicekit.auth import ALGORITHM, AUDIENCE, ISSUER


def load_private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key must be an Ed25519 private key (PEM, PKCS8)")
    return key


def new_private_pem() -> str:
    """A new Ed25519 signing key, PEM (PKCS8, unencrypted): what JWT_PRIVATE_KEY_FILE holds."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )


def public_pem(private_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM of a PKCS8 Ed25519 private key."""
    return (
        load_private_key(private_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass(frozen=True)
class Issued:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenIssuer:
    """Signs the tokens of logged-in users."""

    private_key: Ed25519PrivateKey = field(repr=False)
    ttl_seconds: int = 3600

    @classmethod
    def from_pem(cls, pem: str, ttl_seconds: int) -> TokenIssuer:
        return cls(load_private_key(pem), ttl_seconds)

    async def issue(self, user: Mapping[str, Any], orgs: Mapping[int, str], not_before: int = 0) -> Issued:
        """A token for `user` (its id, email, admin) with its grants. The user's last revocation
        cut-off `not_before` may be up to a second ahead (see events.cut_off): the token waits for
        it, so its `iat` is honest and the revocation of older tokens does not catch it."""
        delay = not_before - time.time()
        if delay > 0:
            await asyncio.sleep(min(delay, 2.0))
        iat = max(int(time.time()), not_before)
        exp = iat + self.ttl_seconds
        jti = uuid.uuid4().hex
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user["id"]),
            "email": user["email"],
            "admin": bool(user["admin"]),
            "orgs": {str(org): role for org, role in sorted(orgs.items())},
            "iat": iat,
            "exp": exp,
            "jti": jti,
        }
        token = jwt.encode(claims, self.private_key, algorithm=ALGORITHM)
        return Issued(token=token, jti=jti, expires_at=datetime.fromtimestamp(exp, UTC))
