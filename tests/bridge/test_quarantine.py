"""Ledger rows Postgres refused are shown to operators: counted in /metrics, listed by the admin
API, on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from dealflow.messages import LedgerBatch, LedgerEvent
from tests.bridge_support import ADMIN_BEARER


def event(key: str, message: str) -> LedgerEvent:
    return LedgerEvent(
        event_key=key,
        deal_id="acme-logo",
        kind="signed",
        source="client",
        occurred_at=datetime(2026, 11, 21, tzinfo=UTC),
        detail={"message": message},
    )


async def test_a_quarantined_row_is_counted_listed_and_shown(
    bridge_url: str, db_pool: asyncpg.Pool
) -> None:
    batch = LedgerBatch(
        deal_id="acme-logo",
        events=[event("deal-acme-logo:1", "Signed by Ada\x00Lovelace"), event("deal-acme-logo:2", "ok")],
    )
    result = await ActivityEnvironment().run(LedgerActivities(db_pool).write_ledger, batch)
    assert [q.key for q in result.quarantined] == ["deal-acme-logo:1"]

    async with httpx.AsyncClient(base_url=bridge_url, headers=ADMIN_BEARER) as http:
        metrics = (await http.get("/metrics")).text
        listed = (await http.get("/api/ledger-quarantine", params={"deal_id": "acme-logo"})).json()
        other = (await http.get("/api/ledger-quarantine", params={"deal_id": "other-deal"})).json()
        status = (await http.get("/api/stripe-status")).json()
        dashboard = (await http.get("/dashboard")).text

    assert "dealflow_ledger_quarantined_rows 1.0" in metrics
    assert [(r["entry"], r["key"]) for r in listed] == [("event", "deal-acme-logo:1")]
    assert "\\u0000" in listed[0]["payload"] and listed[0]["error"]
    assert other == []
    assert status["ledger_quarantined"] == 1
    assert 'id="ledger-quarantined">1<' in dashboard
