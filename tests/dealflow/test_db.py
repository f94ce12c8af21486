"""Migrations apply once and are recorded."""

import asyncpg

from dealflow.db import migrate, migrations


async def test_migrations_are_recorded_and_not_reapplied(db_pool: asyncpg.Pool) -> None:
    versions = [v for v, _, _ in migrations()]
    recorded = [r["version"] for r in await db_pool.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    assert recorded == versions
    assert await migrate(db_pool) == []
