"""Password hashing with argon2-cffi (argon2id, the library's RFC 9106 defaults).

Hashing and verifying cost tens of milliseconds of CPU and 64 MiB each, so they run in a worker
thread, at most `concurrency` at once (`Hasher`; more callers wait their turn without holding
anything else, in particular no database connection). An unknown email is verified against a
dummy hash, so it costs the same as a wrong password.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not the password of anyone: a stand-in for unknown emails")


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash (unknown email) the same work is
    done against a dummy hash and the answer is False."""
    return await asyncio.to_thread(_verify, stored, password)


class Hasher:
    """hash_password and verify_password with at most `concurrency` running at once."""

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await hash_password(password)

    async def verify(self, stored: str | None, password: str) -> bool:
        async with self._slots:
            return await verify_password(stored, password)


def warm_up() -> None:
    """Compute the dummy hash now, so the first unknown-email login is not slower than others."""
    _dummy_hash()
