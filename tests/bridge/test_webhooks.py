"""POST /webhooks/stripe on real Postgres and the real Temporal dev server.

Only signed, fresh events are stored; each event id is stored once; events naming no deal are kept
as orphans, and events for a deal with no workflow as undeliverable (once the relay gives up), for
the admin API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.ledger import insert_payment
from bridge.app import BridgeOptions
from bridge.ratelimit import RateLimit
from bridge.relay import RelayPolicy
from dealflow.messages import PaymentKind, PaymentRecord
from tests.bridge_support import (
    ADMIN_BEARER,
    bridge_settings,
    card_payment,
    eventually,
    running_bridge,
    session_completed,
    signed,
    stripe_event,
)


@pytest.fixture
async def bridge_url(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[str]:
    settings = bridge_settings(tmp_path, database_url)
    # A missing deal is given up at its first attempt here (the relay's own tests cover the wait).
    options = BridgeOptions(
        relay=RelayPolicy(interval=0.2, missing_deal_for=timedelta(0), orphan_sweep=0.2)
    )
    async with running_bridge(settings, db_pool, dev_server_env.client, options) as url:
        yield url


async def _stored(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT event_id, status, deal_id, last_error FROM stripe_events ORDER BY received_seq")


def _forged(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"120000", b"999999"), headers


def _stale(event: dict) -> tuple[bytes, dict[str, str]]:
    return signed(event, timestamp=int(time.time()) - 301)


def _future(event: dict) -> tuple[bytes, dict[str, str]]:
    # A minute beyond the tolerance: on a busy machine the POST arrives seconds after signing.
    return signed(event, timestamp=int(time.time()) + 360)


def _wrong_secret(event: dict) -> tuple[bytes, dict[str, str]]:
    return signed(event, secret="whsec_" + "z" * 32)


def _missing(event: dict) -> tuple[bytes, dict[str, str]]:
    body, _headers = signed(event)
    return body, {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda e: _forged(*signed(e)), id="forged-body"),
        pytest.param(_wrong_secret, id="wrong-secret"),
        pytest.param(_stale, id="stale"),
        pytest.param(_future, id="future-dated"),
        pytest.param(_missing, id="missing"),
    ],
)
async def test_bad_signatures_are_refused_counted_and_change_nothing(
    bridge_url: str, db_pool: asyncpg.Pool, make
) -> None:
    body, headers = make(session_completed("some-deal", "build", 120000))
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        response = await http.post("/webhooks/stripe", content=body, headers=headers)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_signature"
        assert error["field"] == "Stripe-Signature"
        assert await _stored(db_pool) == []
        metrics = (await http.get("/metrics")).text
        assert "dealflow_bridge_webhook_signature_failures_total 1.0" in metrics
        status = (await http.get("/api/stripe-status", headers=ADMIN_BEARER)).json()
        assert status["last_24h"]["signature_failures"] == 1
        assert status["last_24h"]["events_received"] == 0


async def test_signature_within_five_minutes_is_accepted(bridge_url: str, db_pool: asyncpg.Pool) -> None:
    body, headers = signed(stripe_event("customer.created", {"id": "cus_1"}), timestamp=int(time.time()) - 240)
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        response = await http.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert [r["status"] for r in await _stored(db_pool)] == ["ignored"]


async def test_signed_body_that_is_not_an_event_is_refused(bridge_url: str, db_pool: asyncpg.Pool) -> None:
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        body, headers = signed({"id": "evt_1"})
        response = await http.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_event"
    assert await _stored(db_pool) == []


async def test_duplicate_event_is_stored_once(bridge_url: str, db_pool: asyncpg.Pool) -> None:
    event = session_completed(None, "build", 120000)
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        first = await http.post("/webhooks/stripe", content=(s := signed(event))[0], headers=s[1])
        again = await http.post("/webhooks/stripe", content=(s := signed(event))[0], headers=s[1])
    assert first.json() == {"received": True, "event_id": event["id"], "status": "orphan"}
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(await _stored(db_pool)) == 1


async def test_events_for_no_deal_or_an_unknown_deal_are_kept_for_an_operator(
    bridge_url: str, db_pool: asyncpg.Pool
) -> None:
    no_metadata = session_completed(None, "build", 120000)
    unknown_deal = session_completed("never-started", "build", 120000)
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        for event in (no_metadata, unknown_deal):
            body, headers = signed(event)
            assert (await http.post("/webhooks/stripe", content=body, headers=headers)).status_code == 200

        async def given_up() -> list:
            params = {"status": "undeliverable"}
            return (await http.get("/api/stripe-events", params=params, headers=ADMIN_BEARER)).json()

        [undeliverable] = await eventually(given_up, what="the relay to give up on the unknown deal")
        [orphan] = (await http.get("/api/stripe-events", params={"status": "orphan"}, headers=ADMIN_BEARER)).json()
        stats = (await http.get("/api/stripe-status", headers=ADMIN_BEARER)).json()
    assert orphan["event_id"] == no_metadata["id"] and orphan["deal_id"] is None
    assert undeliverable["event_id"] == unknown_deal["id"]
    assert undeliverable["deal_id"] == "never-started"
    assert "never-started" in undeliverable["last_error"]
    assert undeliverable["attempts"] == 1
    assert stats["last_24h"] == {"events_received": 2, "signature_failures": 0, "orphans": 1, "folded": 0}
    assert stats["inbox_backlog"] == 0
    assert stats["inbox_undeliverable"] == 1


async def test_oversize_bodies_are_refused_before_reading(bridge_url: str, db_pool: asyncpg.Pool) -> None:
    event = stripe_event("checkout.session.completed", {"id": "cs_1", "object": "checkout.session", "padding": "x" * (1024 * 1024)})
    body, headers = signed(event)

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    async with httpx.AsyncClient(base_url=bridge_url) as http:
        declared = await http.post("/webhooks/stripe", content=body, headers=headers)
        streamed = await http.post("/webhooks/stripe", content=chunked(), headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    assert "transfer-encoding" not in declared.request.headers
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    assert await _stored(db_pool) == []


async def test_webhook_floods_are_rate_limited(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment
) -> None:
    options = BridgeOptions(webhook_rate=RateLimit(per_second=0.01, burst=2))
    settings = bridge_settings(tmp_path, database_url)
    async with (
        running_bridge(settings, db_pool, dev_server_env.client, options) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        answers = []
        for _ in range(3):
            body, headers = signed(stripe_event("customer.created", {"id": "cus_1"}))
            answers.append(await http.post("/webhooks/stripe", content=body, headers=headers))
        metrics = (await http.get("/metrics")).text
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert int(answers[2].headers["Retry-After"]) > 0
    assert 'dealflow_bridge_rate_limited_total{scope="webhook"} 1.0' in metrics
    assert len(await _stored(db_pool)) == 2
    assert json.loads(answers[0].text)["status"] == "ignored"


async def test_a_dispute_before_the_ledgers_row_of_its_payment_finds_its_deal(
    bridge_url: str, db_pool: asyncpg.Pool
) -> None:
    """A dispute names only the payment intent. The payment's own event named the deal when it
    came; the ledger's row of the payment can come seconds later (its batch retried after a
    worker restart: chaos seed 7), and a dispute landing in between was an orphan for good."""
    payment = card_payment("disputed-deal", "build", 120000, "pi_disputed")["payment_intent.succeeded"]
    dispute = stripe_event(
        "charge.dispute.created",
        {"id": "dp_1", "object": "dispute", "amount": 120000, "charge": "ch_1", "payment_intent": "pi_disputed", "metadata": {}},
    )
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        for event in (payment, dispute):
            body, headers = signed(event)
            assert (await http.post("/webhooks/stripe", content=body, headers=headers)).json()["status"] == "pending"
    assert await db_pool.fetchval("SELECT count(*) FROM payments") == 0, "no ledger row yet"
    stored = await db_pool.fetchrow("SELECT deal_id FROM stripe_events WHERE event_id = $1", dispute["id"])
    assert stored["deal_id"] == "disputed-deal"


def _dispute(intent_id: str) -> dict:
    return stripe_event(
        "charge.dispute.created",
        {"id": f"dp_{intent_id}", "object": "dispute", "amount": 120000, "charge": "ch_1", "payment_intent": intent_id, "metadata": {}},
    )


async def _post(http: httpx.AsyncClient, event: dict) -> str:
    body, headers = signed(event)
    return (await http.post("/webhooks/stripe", content=body, headers=headers)).json()["status"]


async def _adopted_by(pool: asyncpg.Pool, event_id: str, deal_id: str) -> asyncpg.Record:
    """The event once the relay handed it to `deal_id` and tried to signal it (no workflow runs
    here, and this bridge gives a missing deal up at once: `undeliverable`, attempted once)."""

    async def handed_over() -> asyncpg.Record | None:
        row = await pool.fetchrow("SELECT status, deal_id, attempts FROM stripe_events WHERE event_id = $1", event_id)
        return row if row["attempts"] > 0 else None

    row = await eventually(handed_over, what=f"{event_id} relayed to its deal")
    assert (row["status"], row["deal_id"]) == ("undeliverable", deal_id)
    return row


async def test_an_orphan_dispute_goes_to_its_deal_when_the_payments_event_comes_after_it(
    bridge_url: str, db_pool: asyncpg.Pool
) -> None:
    """Stripe delivers each event on its own schedule and retries a failed delivery for days: a
    dispute can come before the payment's event that names the deal. It is kept as an orphan,
    then, once that event is in, handed to the deal (which reads the dispute from Stripe)."""
    dispute = _dispute("pi_late")
    payment = card_payment("late-deal", "build", 120000, "pi_late")["payment_intent.succeeded"]
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        assert await _post(http, dispute) == "orphan"
        assert await _post(http, payment) == "pending"
        await _adopted_by(db_pool, dispute["id"], "late-deal")
        assert "dealflow_bridge_orphans_adopted_total 1.0" in (await http.get("/metrics")).text
        orphans = (await http.get("/api/stripe-events", params={"status": "orphan"}, headers=ADMIN_BEARER)).json()
    assert orphans == []


async def test_an_orphan_dispute_goes_to_its_deal_once_the_ledger_records_its_payment(
    bridge_url: str, db_pool: asyncpg.Pool
) -> None:
    """The payment's event may never have reached this inbox (it came before the inbox did, or
    it was lost); the deal still learns of the payment by reading Stripe, and its ledger row
    names the deal."""
    dispute = _dispute("pi_read")
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        assert await _post(http, dispute) == "orphan"
    async with db_pool.acquire() as conn:
        await insert_payment(
            conn,
            PaymentRecord(
                stripe_id="pi_read", deal_id="read-deal", milestone_key="build", kind=PaymentKind.CHARGE,
                amount=120000, currency="usd", livemode=False, sandbox=True, status="succeeded",
                occurred_at=datetime.now(UTC),
            ),
        )  # fmt: skip
    await _adopted_by(db_pool, dispute["id"], "read-deal")


async def test_an_orphan_older_than_the_window_is_left_to_an_operator(
    bridge_url: str, db_pool: asyncpg.Pool
) -> None:
    dispute = _dispute("pi_old")
    payment = card_payment("old-deal", "build", 120000, "pi_old")["payment_intent.succeeded"]
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        assert await _post(http, dispute) == "orphan"
        await db_pool.execute(
            "UPDATE stripe_events SET received_at = now() - interval '8 days' WHERE event_id = $1", dispute["id"]
        )
        assert await _post(http, payment) == "pending"
        await _adopted_by(db_pool, payment["id"], "old-deal")  # the relay has passed over it
        await asyncio.sleep(0.6)  # three sweeps
    row = await db_pool.fetchrow("SELECT status, deal_id FROM stripe_events WHERE event_id = $1", dispute["id"])
    assert (row["status"], row["deal_id"]) == ("orphan", None)
