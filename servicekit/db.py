"""PostgreSQL through asyncpg: one pool per service, its own schema, migrations run on start."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

import asyncpg
import orjson

from servicekit.config import Secret, env_int, env_str

DEFAULT_DATABASE_URL = "postgresql://postgres:postgres@127.0.0.1:15432/app"

# The database is gone or restarting (not the request's fault): the error middleware answers 503.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # connection refused or reset
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.ConnectionDoesNotExistError,  # the connection died in the middle of a query
    asyncpg.CannotConnectNowError,  # 57P03: starting up or recovering
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02: another backend crashed, everyone is thrown out
)


def unreachable(exc: BaseException) -> bool:
    """Whether this error means the database is gone or restarting, not a fault of the query:
    also an error raised while handling one (a transaction's exit on a connection that died)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, _UNREACHABLE):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
        # a pooled connection the crash left half-way through an operation (seen on BEGIN after
        # the postmaster was killed); our code never shares a connection between tasks
        if isinstance(current, asyncpg.InternalClientError) and "another operation" in str(current):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the service's data lives: a database URL and the schema the service owns."""

    url: Secret
    schema: str
    pool_min: int = 2
    pool_max: int = 20

    @classmethod
    def from_env(cls, environ: Mapping[str, str], schema: str) -> DatabaseSettings:
        schema = env_str(environ, "DATABASE_SCHEMA", schema)
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"DATABASE_SCHEMA must be a plain lower-case identifier, got {schema!r}")
        return cls(
            url=Secret(env_str(environ, "DATABASE_URL", DEFAULT_DATABASE_URL)),
            schema=schema,
            pool_min=env_int(environ, "DATABASE_POOL_MIN", 2),
            pool_max=env_int(environ, "DATABASE_POOL_MAX", 20),
        )


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections carry no session state of ours (no LISTEN, no session locks, no SET:
    search_path comes from the connection's startup settings), so the default reset query
    (UNLISTEN, RESET ALL, ...) on every release is a round trip saved."""


async def connect(settings: DatabaseSettings) -> asyncpg.Connection:
    """One connection outside the pool (for LISTEN and session locks), on the service's schema."""
    conn = await asyncpg.connect(settings.url.reveal(), server_settings={"search_path": settings.schema})
    await _init_connection(conn)
    return conn


@asynccontextmanager
async def open_pool(settings: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    """Create the schema if needed and yield a pool whose connections use it."""
    conn = await asyncpg.connect(settings.url.reveal())
    try:
        # Two services starting at once may both try; the lock makes it one at a time.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('servicekit:create-schema'))")
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.schema}"')
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        settings.url.reveal(),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"search_path": settings.schema},
    )
    try:
        yield pool
    finally:
        await pool.close()


async def migrate(pool: asyncpg.Pool, packages: list[str], schema: str) -> list[str]:
    """Apply each package's `migrations/NNN_name.sql` files not applied yet, package by package
    in the order given and files in name order, in one transaction under an advisory lock so
    concurrent starts apply each file once."""
    files: list[tuple[str, str]] = []
    for package in packages:
        folder = resources.files(package) / "migrations"
        files.extend(
            sorted(
                (f"{package}/{entry.name}", entry.read_text("utf-8"))
                for entry in folder.iterdir()
                if entry.name.endswith(".sql")
            )
        )
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in files:
            if name in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
    return applied
