"""LedgerActivities on embedded Postgres: idempotent, append-only, only moving forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from dealflow.messages import (
    DealSnapshot,
    DealStage,
    LedgerBatch,
    LedgerEvent,
    PaymentKind,
    PaymentRecord,
)

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


async def test_a_charge_keeps_its_stripe_fee_and_net(db_pool: asyncpg.Pool) -> None:
    ledger = LedgerActivities(db_pool)

    assert await run(ledger.record_payment, payment(fee=3_655, net=121_345, fee_currency="usd"))
    assert await run(ledger.record_payment, payment(kind=PaymentKind.TRANSFER, stripe_id="tr_1"))

    rows = await db_pool.fetch("SELECT kind, fee, net, fee_currency FROM payments ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("charge", 3_655, 121_345, "usd"),
        ("transfer", None, None, None),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"sandbox": True, "livemode": True},
        {"amount": 0},
        {"fee": 30, "net": None, "fee_currency": "usd"},
        {"fee": -1, "net": 125_001, "fee_currency": "usd"},
        {"kind": PaymentKind.REFUND, "fee": 30, "net": 124_970, "fee_currency": "usd"},
    ],
    ids=[
        "sandbox-money-marked-live",
        "zero-amount",
        "fee-without-net",
        "negative-fee",
        "fee-on-a-refund",
    ],
)
async def test_payments_the_schema_refuses_are_non_retryable(
    db_pool: asyncpg.Pool, changes: dict[str, Any]
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await run(LedgerActivities(db_pool).record_payment, payment(**changes))

    assert raised.value.type == "LedgerRejected"
    assert raised.value.non_retryable
    assert await db_pool.fetchval("SELECT count(*) FROM payments") == 0


async def test_a_batch_writes_events_payments_and_its_snapshot_in_one_go(db_pool: asyncpg.Pool) -> None:
    ledger = LedgerActivities(db_pool)
    batch = LedgerBatch(
        deal_id="acme-logo",
        events=[event(), event(event_key="deal-acme-logo:2")],
        payments=[payment()],
        snapshot=snapshot(stage=DealStage.FUNDED, funded=125_000, version=2),
    )

    first = await run(ledger.write_ledger, batch)
    again = await run(ledger.write_ledger, batch)

    assert (first.written, first.quarantined) == (4, [])
    assert again.written == 4  # idempotent: nothing new, nothing refused
    assert await db_pool.fetchval("SELECT count(*) FROM deal_events") == 2
    assert await db_pool.fetchval("SELECT count(*) FROM payments") == 1
    assert await db_pool.fetchval("SELECT funded FROM deals") == 125_000


async def test_batches_landing_out_of_order_keep_the_newest_snapshot(db_pool: asyncpg.Pool) -> None:
    """Two steps in the same instant: the later step's snapshot has the higher version."""
    ledger = LedgerActivities(db_pool)
    newer = LedgerBatch(deal_id="acme-logo", snapshot=snapshot(stage=DealStage.FUNDED, version=5))
    older = LedgerBatch(deal_id="acme-logo", snapshot=snapshot(stage=DealStage.SIGNED, version=4))

    await run(ledger.write_ledger, newer)
    await run(ledger.write_ledger, older)

    assert await db_pool.fetchval("SELECT stage FROM deals") == "funded"


@pytest.mark.parametrize(
    "poison",
    [
        event(event_key="deal-acme-logo:3", detail={"message": "signed by Ada\x00Lovelace"}),
        event(event_key="deal-acme-logo:3", detail={"message": "signed by \ud800"}),
        event(event_key="deal-acme-logo:3", kind="signed\x00"),
    ],
    ids=["nul-in-jsonb", "lone-surrogate", "nul-in-text-column"],
)
async def test_a_row_postgres_refuses_is_quarantined_and_the_rest_is_written(
    db_pool: asyncpg.Pool, poison: LedgerEvent
) -> None:
    ledger = LedgerActivities(db_pool)
    batch = LedgerBatch(
        deal_id="acme-logo",
        events=[event(), poison, event(event_key="deal-acme-logo:4")],
        payments=[payment()],
        snapshot=snapshot(version=4),
    )

    result = await run(ledger.write_ledger, batch)

    assert result.written == 4
    assert [(q.entry, q.key) for q in result.quarantined] == [("event", "deal-acme-logo:3")]
    keys = await db_pool.fetch("SELECT event_key FROM deal_events ORDER BY event_key")
    assert [r["event_key"] for r in keys] == ["deal-acme-logo:4", "deal-acme-logo:stripe:evt_123"]
    assert await db_pool.fetchval("SELECT count(*) FROM payments") == 1
    kept = await db_pool.fetchrow("SELECT deal_id, entry, key, error, payload FROM ledger_quarantine")
    assert (kept["deal_id"], kept["entry"], kept["key"]) == ("acme-logo", "event", "deal-acme-logo:3")
    assert kept["error"]
    assert "\\u" in kept["payload"]  # the poison is kept, escaped

    # Written again (a retried activity): the quarantine keeps one copy.
    await run(ledger.write_ledger, batch)
    assert await db_pool.fetchval("SELECT count(*) FROM ledger_quarantine") == 1


async def test_a_single_row_postgres_refuses_is_quarantined_and_non_retryable(
    db_pool: asyncpg.Pool,
) -> None:
    """Deals recorded before batches write row by row; their poison must not block them either."""
    with pytest.raises(ApplicationError) as raised:
        await run(
            LedgerActivities(db_pool).record_event, event(detail={"message": "Ada\x00Lovelace"})
        )

    assert raised.value.type == "LedgerRejected"
    assert raised.value.non_retryable
    assert await db_pool.fetchval("SELECT count(*) FROM ledger_quarantine") == 1
