"""Migrations apply once and are recorded, and carry what was stored before them forward."""

import json

import asyncpg

from dealflow.db import migrate, migrations


async def test_migrations_are_recorded_and_not_reapplied(db_pool: asyncpg.Pool) -> None:
    versions = [v for v, _, _ in migrations()]
    recorded = [r["version"] for r in await db_pool.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    assert recorded == versions
    assert await migrate(db_pool) == []


async def test_orphans_kept_before_migration_16_name_their_payment_intent(empty_database_url: str) -> None:
    """Orphans stored before the inbox kept the intent they name get it from their payload, in
    each of the shapes Stripe sends it: the intent itself, its id, or the intent expanded."""
    conn = await asyncpg.connect(empty_database_url)
    try:
        for version, _name, sql in migrations():
            if version < 16:
                await conn.execute(sql)
        shapes = {
            "evt_intent": {"object": "payment_intent", "id": "pi_a"},
            "evt_named": {"object": "dispute", "id": "dp_b", "payment_intent": "pi_b"},
            "evt_expanded": {"object": "refund", "id": "re_c", "payment_intent": {"id": "pi_c"}},
            "evt_none": {"object": "charge", "id": "ch_d"},
        }
        for event_id, obj in shapes.items():
            await conn.execute(
                """INSERT INTO stripe_events (event_id, type, livemode, payload, status)
                   VALUES ($1, 'charge.dispute.created', false, $2::jsonb, 'orphan')""",
                event_id,
                json.dumps({"id": event_id, "data": {"object": obj}}),
            )
        [(_version, _name, sql)] = [m for m in migrations() if m[0] == 16]
        await conn.execute(sql)
        rows = await conn.fetch("SELECT event_id, orphan_intent_id FROM stripe_events")
    finally:
        await conn.close()
    assert dict(rows) == {"evt_intent": "pi_a", "evt_named": "pi_b", "evt_expanded": "pi_c", "evt_none": None}
