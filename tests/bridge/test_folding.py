"""One relayed signal per payment, on real Postgres and the real Temporal dev server.

Stripe sends two events for one card payment through Checkout: the session's completion and its
payment intent's (`succeeded`, or `amount_capturable_updated` for a held card). The inbox relays
whichever comes first and keeps the other as `folded`. The deals are `SignalLog` workflows, so
the tests check what reached the workflow, not only what the inbox says.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from bridge.app import BridgeOptions
from bridge.relay import RelayPolicy
from dealflow.settings import Settings
from tests.bridge_support import (
    ADMIN_TOKEN,
    bridge_settings,
    card_payment,
    eventually,
    running_bridge,
    signed,
    stripe_event,
)
from tests.signal_log import signals_received, start_signal_log

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SESSION = "checkout.session.completed"
OPTIONS = BridgeOptions(relay=RelayPolicy(interval=0.2), temporal_timeout=timedelta(seconds=5))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return bridge_settings(tmp_path, database_url)


def _deal_id(name: str) -> str:
    """A deal id no other test on the session's dev server uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _intent_id() -> str:
    return f"pi_{uuid.uuid4().hex[:24]}"


async def _post(http: httpx.AsyncClient, event: dict[str, Any]) -> str:
    """POST the event as Stripe would; the inbox's answer (pending, folded, duplicate, ...)."""
    body, headers = signed(event)
    response = await http.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["status"]


async def _statuses(pool: asyncpg.Pool, deal_id: str) -> dict[str, str]:
    rows = await pool.fetch(
        "SELECT event_id, status FROM stripe_events WHERE deal_id = $1", deal_id
    )
    return {row["event_id"]: row["status"] for row in rows}


async def _delivered(pool: asyncpg.Pool, deal_id: str, *event_ids: str) -> bool:
    statuses = await _statuses(pool, deal_id)
    return all(statuses.get(event_id) == "delivered" for event_id in event_ids)


def _refunded_charge(deal_id: str, intent_id: str) -> dict[str, Any]:
    """A later event of the same payment that is not one of its funding events."""
    charge = {
        "id": f"ch_{uuid.uuid4().hex[:24]}",
        "object": "charge",
        "amount": 120000,
        "amount_refunded": 120000,
        "currency": "usd",
        "payment_intent": intent_id,
        "metadata": {"deal_id": deal_id, "milestone_key": "build"},
    }
    return stripe_event("charge.refunded", charge)


@pytest.mark.parametrize("held", [False, True], ids=["captured", "held"])
@pytest.mark.parametrize("session_first", [True, False], ids=["session-first", "intent-first"])
async def test_the_second_event_of_a_payment_is_kept_folded_and_never_relayed(
    settings: Settings,
    db_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    signal_log_queue: str,
    session_first: bool,
    held: bool,
) -> None:
    client = dev_server_env.client
    deal_id = _deal_id("fold")
    await start_signal_log(client, signal_log_queue, deal_id)
    intent_id = _intent_id()
    first, second = card_payment(deal_id, "build", 120000, intent_id, held=held).values()
    if not session_first:
        first, second = second, first
    later = _refunded_charge(deal_id, intent_id)

    async with (
        running_bridge(settings, db_pool, client, OPTIONS) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert [await _post(http, e) for e in (first, second, later)] == [
            "pending",
            "folded",
            "pending",
        ]
        # The deal's events go out in the order received: once the later one is delivered, a
        # folded event that the relay would take would have gone out before it.
        await eventually(
            lambda: _delivered(db_pool, deal_id, first["id"], later["id"]), what="delivery"
        )
        [folded] = (
            await http.get("/api/stripe-events", params={"status": "folded"}, headers=ADMIN)
        ).json()
        stats = (await http.get("/api/stripe-status", headers=ADMIN)).json()
        metrics = (await http.get("/metrics")).text

    assert await signals_received(client, deal_id) == [first["id"], later["id"]]
    assert (await _statuses(db_pool, deal_id))[second["id"]] == "folded"
    assert folded["event_id"] == second["id"] and folded["type"] == second["type"]
    assert folded["attempts"] == 0 and folded["delivered_at"] is None
    assert first["id"] in folded["last_error"] and intent_id in folded["last_error"]
    assert stats["last_24h"]["folded"] == 1 and stats["inbox_backlog"] == 0
    assert 'dealflow_bridge_webhooks_total{outcome="folded"} 1.0' in metrics
    assert 'dealflow_bridge_webhooks_total{outcome="pending"} 2.0' in metrics


async def test_redeliveries_of_a_folded_payment_are_duplicates(
    settings: Settings,
    db_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    signal_log_queue: str,
) -> None:
    client = dev_server_env.client
    deal_id = _deal_id("again")
    await start_signal_log(client, signal_log_queue, deal_id)
    session, intent = card_payment(deal_id, "build", 120000, _intent_id()).values()

    async with (
        running_bridge(settings, db_pool, client, OPTIONS) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        answers = [await _post(http, e) for e in (session, intent, intent, session)]
        await eventually(lambda: _delivered(db_pool, deal_id, session["id"]), what="delivery")
    assert answers == ["pending", "folded", "duplicate", "duplicate"]
    assert await _statuses(db_pool, deal_id) == {session["id"]: "delivered", intent["id"]: "folded"}
    assert await signals_received(client, deal_id) == [session["id"]]


async def test_other_payments_other_deals_and_other_event_types_are_not_folded(
    settings: Settings,
    db_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    signal_log_queue: str,
) -> None:
    client = dev_server_env.client
    mine, theirs = _deal_id("mine"), _deal_id("theirs")
    for deal_id in (mine, theirs):
        await start_signal_log(client, signal_log_queue, deal_id)
    intent_id = _intent_id()
    session, _ = card_payment(mine, "build", 120000, intent_id).values()
    _, other_payment = card_payment(mine, "build", 120000, _intent_id()).values()
    _, other_deal = card_payment(theirs, "build", 120000, intent_id).values()
    async_paid = stripe_event("checkout.session.async_payment_succeeded", session["data"]["object"])
    failed = stripe_event(
        "payment_intent.payment_failed",
        {
            "id": intent_id,
            "object": "payment_intent",
            "amount": 120000,
            "metadata": {"deal_id": mine},
        },
    )
    events = [
        session,
        other_payment,
        other_deal,
        async_paid,
        failed,
        _refunded_charge(mine, intent_id),
    ]

    async with (
        running_bridge(settings, db_pool, client, OPTIONS) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert [await _post(http, e) for e in events] == ["pending"] * len(events)
        ids = [e["id"] for e in events]
        await eventually(
            lambda: _delivered(db_pool, mine, *ids[:2], *ids[3:]), what="mine delivered"
        )
        await eventually(
            lambda: _delivered(db_pool, theirs, other_deal["id"]), what="theirs delivered"
        )
    assert await signals_received(client, mine) == ids[:2] + ids[3:]
    assert await signals_received(client, theirs) == [other_deal["id"]]


async def test_racing_deliveries_of_one_payment_relay_one_signal(
    settings: Settings,
    db_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    signal_log_queue: str,
) -> None:
    """Stripe delivers concurrently: both events of a payment stored at the same moment still
    make one signal (the database's unique index decides, not a read before the write)."""
    client = dev_server_env.client
    deal_id = _deal_id("race")
    await start_signal_log(client, signal_log_queue, deal_id)
    payments = [
        list(card_payment(deal_id, "build", 120000, _intent_id()).values()) for _ in range(20)
    ]

    async with (
        running_bridge(settings, db_pool, client, OPTIONS) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        answers = await asyncio.gather(
            *(asyncio.gather(*(_post(http, e) for e in pair)) for pair in payments)
        )

        async def all_delivered() -> bool:
            return "pending" not in (await _statuses(db_pool, deal_id)).values()

        await eventually(all_delivered, what="every payment relayed")
    assert all(sorted(pair) == ["folded", "pending"] for pair in answers), answers
    relayed = [
        e["id"]
        for pair, said in zip(payments, answers, strict=True)
        for e, s in zip(pair, said)
        if s == "pending"
    ]
    assert sorted(await signals_received(client, deal_id)) == sorted(relayed)


async def test_folding_holds_across_a_restart_of_the_bridge(
    settings: Settings,
    db_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    signal_log_queue: str,
) -> None:
    """What folds is decided by the stored rows: a new bridge process (nothing in memory) folds
    the second event of a payment whose first one an earlier process stored."""
    client = dev_server_env.client
    deal_id = _deal_id("restart")
    await start_signal_log(client, signal_log_queue, deal_id)
    payment = card_payment(deal_id, "build", 120000, _intent_id(), held=True)
    intent, session = payment["payment_intent.amount_capturable_updated"], payment[SESSION]

    async with (
        running_bridge(settings, db_pool, client, OPTIONS) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert await _post(http, intent) == "pending"
    async with (
        running_bridge(settings, db_pool, client, OPTIONS) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert await _post(http, session) == "folded"
        await eventually(lambda: _delivered(db_pool, deal_id, intent["id"]), what="delivery")
    assert await signals_received(client, deal_id) == [intent["id"]]


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_a_bank_debits_outcome_is_relayed_after_its_processing_session(
    settings: Settings,
    db_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    signal_log_queue: str,
    outcome: str,
) -> None:
    """A debit's session completes unpaid days before its outcome: the outcome's session event
    reports the same payment intent, and must reach the deal (the intent's own event may fold)."""
    client = dev_server_env.client
    deal_id = _deal_id("debit")
    await start_signal_log(client, signal_log_queue, deal_id)
    intent_id = _intent_id()
    session, intent = card_payment(deal_id, "build", 120000, intent_id).values()
    session["data"]["object"]["payment_status"] = "unpaid"
    if outcome == "failed":
        intent["type"] = "payment_intent.payment_failed"
        intent["data"]["object"]["status"] = "requires_payment_method"
    settled = stripe_event(f"checkout.session.async_payment_{outcome}", session["data"]["object"])
    expected = ["pending", "folded" if outcome == "succeeded" else "pending", "pending"]

    async with (
        running_bridge(settings, db_pool, client, OPTIONS) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert [await _post(http, e) for e in (session, intent, settled)] == expected
        await eventually(
            lambda: _delivered(db_pool, deal_id, session["id"], settled["id"]), what="delivery"
        )
    relayed = await signals_received(client, deal_id)
    assert settled["id"] in relayed
    assert relayed[0] == session["id"]
