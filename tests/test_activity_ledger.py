"""LedgerActivities on embedded Postgres: idempotent, append-only, only moving forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from dealflow.messages import DealSnapshot, DealStage, LedgerEvent, PaymentKind, PaymentRecord

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def event(**changes: Any) -> LedgerEvent:
    fields: dict[str, Any] = {
        "event_key": "deal-acme-logo:stripe:evt_123",
        "deal_id": "acme-logo",
        "milestone_key": "concepts",
        "kind": "milestone_funded",
        "source": "stripe",
        "occurred_at": AT,
        "detail": {
            "amount": 125_000,
            "currency": "usd",
            "payment_intent": "pi_1",
            "tags": ["a", None],
        },
    }
    fields.update(changes)
    return LedgerEvent(**fields)


def snapshot(**changes: Any) -> DealSnapshot:
    fields: dict[str, Any] = {
        "deal_id": "acme-logo",
        "workflow_id": "deal-acme-logo",
        "title": "Acme logo redesign",
        "client_email": "ada@client.test",
        "vendor_email": "vera@vendor.test",
        "currency": "usd",
        "stage": DealStage.SOW_SENT,
        "amount_total": 200_000,
        "funded": 0,
        "released": 0,
        "refunded": 0,
        "livemode": None,
        "demo": False,
        "updated_at": AT,
    }
    fields.update(changes)
    return DealSnapshot(**fields)


def payment(**changes: Any) -> PaymentRecord:
    fields: dict[str, Any] = {
        "stripe_id": "ch_1",
        "deal_id": "acme-logo",
        "milestone_key": "concepts",
        "kind": PaymentKind.CHARGE,
        "amount": 125_000,
        "currency": "usd",
        "livemode": False,
        "sandbox": True,
        "status": "succeeded",
        "occurred_at": AT,
    }
    fields.update(changes)
    return PaymentRecord(**fields)


async def run(method: Any, arg: Any) -> Any:
    return await ActivityEnvironment().run(method, arg)


async def test_an_event_recorded_twice_is_written_once(db_pool: asyncpg.Pool) -> None:
    ledger = LedgerActivities(db_pool)

    assert await run(ledger.record_event, event()) is True
    assert await run(ledger.record_event, event()) is False
    assert await run(ledger.record_event, event(event_key="deal-acme-logo:stripe:evt_124")) is True

    rows = await db_pool.fetch("SELECT * FROM deal_events ORDER BY id")
    assert [r["event_key"] for r in rows] == [
        "deal-acme-logo:stripe:evt_123",
        "deal-acme-logo:stripe:evt_124",
    ]
    first = rows[0]
    assert (first["deal_id"], first["milestone_key"], first["kind"], first["source"]) == (
        "acme-logo",
        "concepts",
        "milestone_funded",
        "stripe",
    )
    assert first["occurred_at"] == AT
    assert await db_pool.fetchval(
        "SELECT detail = $1::jsonb FROM deal_events WHERE id = $2",
        '{"amount": 125000, "currency": "usd", "payment_intent": "pi_1", "tags": ["a", null]}',
        first["id"],
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE deal_events SET kind = 'forged'",
        "DELETE FROM deal_events",
        "TRUNCATE deal_events",
    ],
)
async def test_deal_events_refuse_changes(db_pool: asyncpg.Pool, statement: str) -> None:
    await run(LedgerActivities(db_pool).record_event, event())

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db_pool.execute(statement)

    assert await db_pool.fetchval("SELECT kind FROM deal_events") == "milestone_funded"


async def test_deal_snapshots_only_move_forward(db_pool: asyncpg.Pool) -> None:
    ledger = LedgerActivities(db_pool)
    later = AT + timedelta(hours=2)

    await run(ledger.upsert_deal, snapshot())
    await run(
        ledger.upsert_deal,
        snapshot(stage=DealStage.FUNDED, funded=125_000, livemode=False, updated_at=later),
    )
    await run(
        ledger.upsert_deal, snapshot(stage=DealStage.SIGNED, updated_at=AT + timedelta(hours=1))
    )

    row = await db_pool.fetchrow("SELECT * FROM deals WHERE deal_id = 'acme-logo'")
    assert (row["stage"], row["funded"], row["livemode"], row["updated_at"]) == (
        "funded",
        125_000,
        False,
        later,
    )
    assert await db_pool.fetchval("SELECT count(*) FROM deals") == 1


async def test_a_snapshot_retried_with_the_same_time_is_applied_again(
    db_pool: asyncpg.Pool,
) -> None:
    ledger = LedgerActivities(db_pool)

    await run(ledger.upsert_deal, snapshot(stage=DealStage.SIGNED))
    await run(ledger.upsert_deal, snapshot(stage=DealStage.SIGNED))

    assert await db_pool.fetchval("SELECT stage FROM deals") == "signed"


async def test_payments_are_unique_per_stripe_id_and_kind(db_pool: asyncpg.Pool) -> None:
    ledger = LedgerActivities(db_pool)

    assert await run(ledger.record_payment, payment()) is True
    assert await run(ledger.record_payment, payment(amount=1)) is False
    assert await run(ledger.record_payment, payment(kind=PaymentKind.REFUND, amount=25_000)) is True

    rows = await db_pool.fetch("SELECT kind, amount, sandbox, livemode FROM payments ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("charge", 125_000, True, False),
        ("refund", 25_000, True, False),
    ]


@pytest.mark.parametrize(
    "changes",
    [{"sandbox": True, "livemode": True}, {"amount": 0}],
    ids=["sandbox-money-marked-live", "zero-amount"],
)
async def test_payments_the_schema_refuses_are_non_retryable(
    db_pool: asyncpg.Pool, changes: dict[str, Any]
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await run(LedgerActivities(db_pool).record_payment, payment(**changes))

    assert raised.value.type == "LedgerRejected"
    assert raised.value.non_retryable
    assert await db_pool.fetchval("SELECT count(*) FROM payments") == 0
