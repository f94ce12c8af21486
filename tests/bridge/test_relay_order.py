"""The relay on real Postgres and the real Temporal dev server: many deals at once, each in order.

The deals are `SignalLog` workflows, which keep every Stripe signal they receive (repeats too), so
the tests check the order and the count each workflow saw, not only what the inbox says.
"""

from __future__ import annotations

import random
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from bridge.app import BridgeOptions
from bridge.relay import Backoff, RelayPolicy
from dealflow.db import create_pool
from dealflow.models import workflow_id_for
from dealflow.settings import Settings
from tests.bridge_support import (
    ADMIN_TOKEN,
    bridge_settings,
    card_payment,
    eventually,
    running_bridge,
    store_pending,
    store_pending_events,
    stripe_event,
)
from tests.signal_log import signals_received, start_signal_log

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
QUICK_RETRIES = Backoff(first=timedelta(seconds=0.2), longest=timedelta(seconds=1))


def _options(*, missing_deal_for: timedelta = timedelta(hours=1)) -> BridgeOptions:
    return BridgeOptions(
        relay=RelayPolicy(interval=0.2, retry=QUICK_RETRIES, missing_deal_for=missing_deal_for),
        temporal_timeout=timedelta(seconds=2),
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return bridge_settings(tmp_path, database_url, DEALFLOW_RELAY_CONCURRENCY=4)


async def _rows(pool: asyncpg.Pool, deal_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT event_id, status, attempts, last_error, received_at, delivered_at
           FROM stripe_events WHERE deal_id = $1 ORDER BY received_seq""",
        deal_id,
    )


async def _all(pool: asyncpg.Pool, deal_id: str, status: str) -> list[asyncpg.Record]:
    rows = await _rows(pool, deal_id)
    return rows if rows and all(r["status"] == status for r in rows) else []


def _counter(metrics: str, name: str) -> float:
    """A sample's value in Prometheus text; 0 when the bridge never counted it."""
    values = (float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name + " "))
    return next(values, 0.0)


async def test_a_missing_deal_backs_off_alone_and_gets_its_events_in_order_once_it_exists(
    settings: Settings, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment, signal_log_queue: str
) -> None:
    client = dev_server_env.client
    await start_signal_log(client, signal_log_queue, "on-time")
    stored = await store_pending_events(db_pool, ["late"] * 5 + ["on-time"] * 5)

    async with running_bridge(settings, db_pool, client, _options()) as url:
        on_time = await eventually(
            lambda: _all(db_pool, "on-time", "delivered"), what="the existing deal's events"
        )

        async def late_retried_twice() -> list[asyncpg.Record]:
            rows = await _rows(db_pool, "late")
            return rows if rows[0]["attempts"] >= 2 else []

        late = await eventually(late_retried_twice, what="the missing deal to be retried")
        # The existing deal went through in about a round trip per event, not behind the missing
        # deal's retries; the missing deal's later events were never tried before its first.
        took = max(r["delivered_at"] for r in on_time) - min(r["received_at"] for r in on_time)
        assert took < timedelta(seconds=5), took
        assert late[0]["status"] == "pending" and "no deal workflow for 'late'" in late[0]["last_error"]
        assert [r["attempts"] for r in late[1:]] == [0, 0, 0, 0]

        async with httpx.AsyncClient(base_url=url, headers=ADMIN) as http:
            params = {"deal_id": "late", "status": "pending"}
            listed = (await http.get("/api/stripe-events", params=params)).json()
            status = (await http.get("/api/stripe-status")).json()
            not_a_deal = await http.get("/api/stripe-events", params={"deal_id": "late\x00"})
        head = next(e for e in listed if e["event_id"] == stored["late"][0])
        assert head["attempts"] >= 2 and "no deal workflow" in head["last_error"] and head["next_attempt_at"]
        assert status["inbox_retrying"] == 1 and status["inbox_backlog"] == 5
        assert not_a_deal.status_code == 422 and not_a_deal.json()["error"]["field"] == "deal_id"

        await start_signal_log(client, signal_log_queue, "late")
        await eventually(lambda: _all(db_pool, "late", "delivered"), what="the late deal's events")
    assert await signals_received(client, "on-time") == stored["on-time"]
    assert await signals_received(client, "late") == stored["late"]


async def test_two_bridges_deliver_every_event_once_and_each_deal_in_order(
    settings: Settings,
    database_url: str,
    db_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    signal_log_queue: str,
) -> None:
    client = dev_server_env.client
    deal_ids = [f"busy-{n}" for n in range(10)]
    for deal_id in deal_ids:
        await start_signal_log(client, signal_log_queue, deal_id)
    arrivals = deal_ids * 40
    random.Random(7).shuffle(arrivals)

    async with AsyncExitStack() as bridges:
        other_pool = await create_pool(database_url, max_size=4)
        bridges.push_async_callback(other_pool.close)
        urls = [
            await bridges.enter_async_context(running_bridge(settings, pool, client, _options()))
            for pool in (db_pool, other_pool)
        ]
        stored = await store_pending_events(db_pool, arrivals)  # both relays are polling by now

        async def all_delivered() -> bool:
            sql = "SELECT count(*) FROM stripe_events WHERE status <> 'delivered'"
            return await db_pool.fetchval(sql) == 0

        await eventually(all_delivered, timeout=60, what="both bridges to deliver the inbox")
        delivered_by = []
        for url in urls:
            async with httpx.AsyncClient(base_url=url) as http:
                metrics = (await http.get("/metrics")).text
            delivered_by.append(_counter(metrics, 'dealflow_bridge_relay_total{outcome="delivered"}'))
    assert sum(delivered_by) == len(arrivals) and all(delivered_by), delivered_by
    for deal_id in deal_ids:
        assert await signals_received(client, deal_id) == stored[deal_id]
    assert await db_pool.fetchval("SELECT max(attempts) FROM stripe_events") == 1


async def test_events_are_given_up_when_their_deal_stays_missing_or_has_ended(
    settings: Settings, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment, signal_log_queue: str
) -> None:
    client = dev_server_env.client
    await start_signal_log(client, signal_log_queue, "ended")
    await client.get_workflow_handle(workflow_id_for("ended")).terminate("the deal is over")
    await store_pending_events(db_pool, ["never"] * 2 + ["ended"] * 2)

    options = _options(missing_deal_for=timedelta(seconds=1))
    async with running_bridge(settings, db_pool, client, options) as url:
        never = await eventually(lambda: _all(db_pool, "never", "undeliverable"), what="a missing deal")
        ended = await eventually(lambda: _all(db_pool, "ended", "undeliverable"), what="an ended deal")
        async with httpx.AsyncClient(base_url=url, headers=ADMIN) as http:
            listed = (await http.get("/api/stripe-events", params={"status": "undeliverable"})).json()
            metrics = (await http.get("/metrics")).text
            dashboard = (await http.get("/dashboard")).text
    assert never[0]["attempts"] >= 2 and "no deal workflow" in never[0]["last_error"]
    assert never[1]["attempts"] == 1  # it had waited behind the first: no second wait
    assert [r["attempts"] for r in ended] == [1, 1]
    assert [r["last_error"] for r in ended] == ["this deal has ended (terminated)"] * 2
    assert len(listed) == 4
    assert _counter(metrics, 'dealflow_bridge_relay_total{outcome="undeliverable"}') == 4
    assert _counter(metrics, "dealflow_bridge_inbox_undeliverable") == 4
    assert 'id="inbox-undeliverable">4<' in dashboard


async def test_events_other_processes_store_or_make_pending_again_go_out_at_once(
    settings: Settings, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment, signal_log_queue: str
) -> None:
    """Stored past the bridge's route (another process, an operator), an event still reaches its
    deal in moments: the inbox NOTIFYs the relays, which otherwise would wait for their poll."""
    client = dev_server_env.client
    await start_signal_log(client, signal_log_queue, "notified")
    hourly = BridgeOptions(relay=RelayPolicy(interval=3600), temporal_timeout=timedelta(seconds=2))
    async with running_bridge(settings, db_pool, client, hourly):
        [stored] = (await store_pending_events(db_pool, ["notified"]))["notified"]
        await eventually(lambda: _all(db_pool, "notified", "delivered"), timeout=10, what="the notified event")
        await db_pool.execute("UPDATE stripe_events SET status = 'undeliverable' WHERE event_id = $1", stored)
        await db_pool.execute(
            "UPDATE stripe_events SET status = 'pending', next_attempt_at = now() WHERE event_id = $1", stored
        )
        await eventually(lambda: _all(db_pool, "notified", "delivered"), timeout=10, what="the re-pended event")
    assert await signals_received(client, "notified") == [stored, stored]


async def test_an_ended_deals_late_events_it_had_accounted_for_need_nobody(
    settings: Settings, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment, signal_log_queue: str
) -> None:
    """Stripe is late and the deal does not wait for it: the deal found its payment by reading
    Stripe, and its cancellation expired its own link. Those events are kept with a note; money
    its ledger never saw still waits for an operator."""
    client = dev_server_env.client
    deal_id = f"ended-{uuid.uuid4().hex[:8]}"
    await start_signal_log(client, signal_log_queue, deal_id)
    await client.get_workflow_handle(workflow_id_for(deal_id)).terminate("the deal is over")
    recorded, unrecorded, held = (f"pi_{uuid.uuid4().hex[:20]}" for _ in range(3))
    await db_pool.execute(
        """INSERT INTO payments (stripe_id, kind, deal_id, milestone_key, amount, currency,
                                 livemode, sandbox, status, occurred_at)
           VALUES ($1, 'charge', $3, 'build', 1000, 'usd', false, true, 'succeeded', now()),
                  ($2, 'authorization', $3, 'build', 1000, 'usd', false, true, 'held', now())""",
        recorded, held, deal_id,
    )  # fmt: skip
    paid = card_payment(deal_id, "build", 1000, recorded)
    events = {
        "paid": paid["checkout.session.completed"],
        "paid, again": paid["payment_intent.succeeded"],
        "expired": stripe_event(
            "checkout.session.expired",
            {"id": "cs_test_expired", "object": "checkout.session", "metadata": {"deal_id": deal_id}},
        ),
        "money it never saw": card_payment(deal_id, "build", 1000, unrecorded)["checkout.session.completed"],
        # A hold the deal recorded, captured after it ended: money it never saw taken.
        "captured after": card_payment(deal_id, "build", 1000, held)["payment_intent.succeeded"],
    }
    ids = {name: await store_pending(db_pool, deal_id, event) for name, event in events.items()}

    async with running_bridge(settings, db_pool, client, _options()) as url:
        rows = await eventually(
            lambda: _settled_rows(db_pool, deal_id), what="the ended deal's events"
        )
        async with httpx.AsyncClient(base_url=url, headers=ADMIN) as http:
            metrics = (await http.get("/metrics")).text
    by_id = {row["event_id"]: row for row in rows}
    kept = {name: (by_id[ids[name]]["status"], by_id[ids[name]]["last_error"]) for name in events}
    assert kept == {
        "paid": ("folded", f"this deal has ended (terminated) after recording the payment {recorded} this event reports"),
        "paid, again": ("folded", f"this deal has ended (terminated) after recording the payment {recorded} this event reports"),
        "expired": ("ignored", "this deal has ended (terminated); a checkout.session.expired moved no money"),
        "money it never saw": ("undeliverable", "this deal has ended (terminated)"),
        "captured after": ("undeliverable", "this deal has ended (terminated)"),
    }
    assert _counter(metrics, 'dealflow_bridge_relay_total{outcome="delivered"}') == 0
    assert _counter(metrics, 'dealflow_bridge_relay_total{outcome="folded"}') == 2
    assert _counter(metrics, 'dealflow_bridge_relay_total{outcome="ignored"}') == 1
    assert _counter(metrics, "dealflow_bridge_inbox_undeliverable") == 2


async def _settled_rows(pool: asyncpg.Pool, deal_id: str) -> list[asyncpg.Record]:
    rows = await _rows(pool, deal_id)
    return rows if rows and all(r["status"] != "pending" for r in rows) else []
