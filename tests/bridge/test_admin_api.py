"""Vendor and admin APIs, health, metrics and docs of the bridge, on real Postgres and Temporal.

Deal actions that need a running workflow are in test_bridge_deals.py; this file covers what
every request meets first: authentication, validation, pagination and the error shape.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerActivities
from bridge.app import BridgeOptions
from bridge.ratelimit import RateLimit
from bridge.relay import RelayPolicy
from dealflow.db import create_pool
from dealflow.messages import DealSnapshot, DealStage
from dealflow.serve import free_port
from tests.bridge_support import (
    ADMIN_BEARER,
    ADMIN_TOKEN,
    VENDOR_TOKEN,
    bridge_settings,
    running_bridge,
)

VENDOR = {"Authorization": f"Bearer {VENDOR_TOKEN}"}
DELIVERABLE = {
    "summary": "first cut",
    "artifacts": [{"name": "site.zip", "url": "https://files.example/site.zip", "sha256": "ab" * 32}],
}

ADMIN_ROUTES = [
    ("GET", "/api/deals", None),
    ("GET", "/api/deals/some-deal", None),
    ("POST", "/api/deals/some-deal/cancel", {"reason": "client withdrew"}),
    ("POST", "/api/deals/some-deal/access-code/resend", None),
    ("GET", "/api/stripe-status", None),
    ("GET", "/api/stripe-events", None),
]
VENDOR_ROUTE = ("POST", "/api/vendor/deals/some-deal/milestones/build/deliverables", DELIVERABLE)


@pytest.fixture
async def http(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    settings = bridge_settings(tmp_path, database_url)
    async with (
        running_bridge(
            settings, db_pool, dev_server_env.client, BridgeOptions(relay=RelayPolicy(interval=0.2))
        ) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


def _error(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"]
    return error


@pytest.mark.parametrize(("method", "path", "body"), [*ADMIN_ROUTES, VENDOR_ROUTE])
async def test_missing_and_wrong_tokens_are_refused(
    http: httpx.AsyncClient, method: str, path: str, body: dict | None
) -> None:
    other = VENDOR if path.startswith("/api/vendor") else ADMIN_BEARER
    wrong_kind = ADMIN_BEARER if other is VENDOR else VENDOR
    missing = await http.request(method, path, json=body)
    _error(missing, 401, "missing_token", "Authorization")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    for headers in ({"Authorization": "Bearer nope"}, {"Authorization": "Basic " + ADMIN_TOKEN}, wrong_kind):
        response = await http.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
    right = await http.request(method, path, json=body, headers=other)
    assert right.status_code in (200, 404), right.text


async def test_unknown_deals_are_404_in_the_error_shape(http: httpx.AsyncClient) -> None:
    _error(await http.get("/api/deals/no-such-deal", headers=ADMIN_BEARER), 404, "not_found", "deal_id")
    cancel = await http.post("/api/deals/no-such-deal/cancel", json={"reason": "x"}, headers=ADMIN_BEARER)
    _error(cancel, 404, "not_found", "deal_id")
    submit = await http.post(VENDOR_ROUTE[1].replace("some-deal", "no-such-deal"), json=DELIVERABLE, headers=VENDOR)
    _error(submit, 404, "not_found", "deal_id")
    _error(await http.get("/no/such/route"), 404, "not_found")


async def test_bodies_are_validated_naming_the_field(http: httpx.AsyncClient) -> None:
    cancel = await http.post("/api/deals/d/cancel", json={"reason": ""}, headers=ADMIN_BEARER)
    assert "reason" in _error(cancel, 422, "invalid", "reason")["message"]
    # Who acts is the token's operator: a body cannot name another.
    posing = await http.post("/api/deals/d/cancel", json={"reason": "x", "operator": "grace"}, headers=ADMIN_BEARER)
    _error(posing, 422, "invalid", "operator")
    bad_hash = {**DELIVERABLE, "artifacts": [{**DELIVERABLE["artifacts"][0], "sha256": "xyz"}]}
    submit = await http.post(VENDOR_ROUTE[1], json=bad_hash, headers=VENDOR)
    _error(submit, 422, "invalid", "artifacts[0].sha256")
    unknown_field = await http.post(VENDOR_ROUTE[1], json={**DELIVERABLE, "price": 5}, headers=VENDOR)
    _error(unknown_field, 422, "invalid", "price")
    bad_key = await http.post(
        "/api/vendor/deals/d/milestones/Not%20A%20Key/deliverables", json=DELIVERABLE, headers=VENDOR
    )
    _error(bad_key, 422, "invalid", "key")
    bad_idempotency = await http.post(
        VENDOR_ROUTE[1], json=DELIVERABLE, headers={**VENDOR, "Idempotency-Key": "has space"}
    )
    _error(bad_idempotency, 422, "invalid", "Idempotency-Key")
    not_json = await http.post(
        VENDOR_ROUTE[1], content=b"{", headers={**VENDOR, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.json()["error"]["code"] == "invalid"


async def _seed_deals(pool: asyncpg.Pool, count: int) -> list[str]:
    """Deals in the read model, written by the ledger activity the workflow uses."""
    ledger = LedgerActivities(pool)
    ids = []
    for n in range(count):
        deal_id = f"deal-{n:02d}"
        await ledger.upsert_deal(
            DealSnapshot(
                deal_id=deal_id,
                workflow_id=f"deal-{deal_id}",
                title=f"Deal {n}",
                client_email="big@client.example" if n % 2 else "small@client.example",
                vendor_email="v@vendor.example",
                currency="usd",
                stage=DealStage.SOW_SENT if n < 3 else DealStage.AWAITING_FUNDING,
                amount_total=1000 * (n + 1),
                funded=0,
                released=0,
                refunded=0,
                livemode=False,
                demo=False,
                updated_at=datetime.now(UTC),
            )
        )
        ids.append(deal_id)
    return ids


async def test_deal_list_pages_with_bounded_size(http: httpx.AsyncClient, db_pool: asyncpg.Pool) -> None:
    ids = await _seed_deals(db_pool, 5)
    for limit in (0, 101, -1):
        _error(await http.get("/api/deals", params={"limit": limit}, headers=ADMIN_BEARER), 422, "invalid", "limit")
    assert (await http.get("/api/deals", params={"limit": 100}, headers=ADMIN_BEARER)).status_code == 200

    seen, cursor, sizes = [], None, []
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await http.get("/api/deals", params=params, headers=ADMIN_BEARER)).json()
        sizes.append(len(page["deals"]))
        seen += [d["deal_id"] for d in page["deals"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1]
    assert seen == list(reversed(ids))

    _error(await http.get("/api/deals", params={"cursor": "!!"}, headers=ADMIN_BEARER), 422, "invalid", "cursor")
    _error(await http.get("/api/deals", params={"stage": "nope"}, headers=ADMIN_BEARER), 422, "invalid", "stage")
    funding = (await http.get("/api/deals", params={"stage": "awaiting_funding"}, headers=ADMIN_BEARER)).json()
    assert [d["deal_id"] for d in funding["deals"]] == ["deal-04", "deal-03"]
    big = (await http.get("/api/deals", params={"client": "BIG@client.example"}, headers=ADMIN_BEARER)).json()
    assert [d["deal_id"] for d in big["deals"]] == ["deal-03", "deal-01"]
    _error(await http.get("/api/deals", params={"client": "not-an-email"}, headers=ADMIN_BEARER), 422, "invalid", "client")


async def test_stripe_status_reports_mode_and_secret(http: httpx.AsyncClient) -> None:
    status = (await http.get("/api/stripe-status", headers=ADMIN_BEARER)).json()
    assert status["mode"] == "unconfigured"
    assert status["webhook_secret_configured"] is True
    assert status["last_24h"] == {"events_received": 0, "signature_failures": 0, "orphans": 0, "folded": 0}
    assert status["inbox_backlog"] == 0


async def test_stripe_mode_follows_the_configured_key(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment
) -> None:
    cases = {
        "sandbox": {"STRIPE_API_KEY": "sk_test_" + "s" * 24, "STRIPE_API_BASE": "http://127.0.0.1:9"},
        "test": {"STRIPE_API_KEY": "sk_test_" + "t" * 24},
        "live": {"STRIPE_API_KEY": "sk_live_" + "l" * 24},
    }
    for mode, overrides in cases.items():
        settings = bridge_settings(tmp_path, database_url, **overrides)
        async with (
            running_bridge(settings, db_pool, dev_server_env.client) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            assert (await client.get("/api/stripe-status", headers=ADMIN_BEARER)).json()["mode"] == mode


async def test_health_readiness_metrics_and_docs(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": True, "temporal": True}}
    metrics = await http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "dealflow_bridge_inbox_backlog 0.0" in metrics.text
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "cdn." not in docs.text  # no CDN: the docs work offline
    for asset in re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', docs.text):
        assert (await http.get(asset)).status_code == 200, asset
    paths = (await http.get("/openapi.json")).json()["paths"]
    for path in (
        "/webhooks/stripe",
        "/portal/{deal_id}",
        "/portal/{deal_id}/sign",
        "/api/vendor/deals/{deal_id}/milestones/{key}/deliverables",
        "/api/deals",
        "/api/deals/{deal_id}/cancel",
        "/api/deals/{deal_id}/disputes/resolve",
        "/api/deals/{deal_id}/reversals/settle",
        "/api/stripe-status",
    ):
        assert path in paths


async def test_not_ready_when_temporal_is_unreachable(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool
) -> None:
    nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    settings = bridge_settings(tmp_path, database_url)
    async with running_bridge(settings, db_pool, nowhere) as url, httpx.AsyncClient(base_url=url) as client:
        ready = await client.get("/readyz")
        assert (await client.get("/healthz")).status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"postgres": True, "temporal": False}


async def test_portal_floods_get_a_429_page(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment
) -> None:
    options = BridgeOptions(portal_rate=RateLimit(per_second=0.01, burst=2))
    settings = bridge_settings(tmp_path, database_url)
    async with (
        running_bridge(settings, db_pool, dev_server_env.client, options) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        answers = [await client.get("/portal/some-deal", params={"token": "x.y"}) for _ in range(3)]
        api = await client.get("/api/stripe-status", headers=ADMIN_BEARER)
    assert [a.status_code for a in answers] == [403, 403, 429]
    assert answers[2].headers["content-type"].startswith("text/html")
    assert "Too many requests" in answers[2].text
    assert int(answers[2].headers["Retry-After"]) > 0
    assert api.status_code == 200, "the API has no portal limit"


async def test_a_lost_database_is_a_json_500_and_not_ready(
    tmp_path: Path, database_url: str, dev_server_env: WorkflowEnvironment
) -> None:
    pool = await create_pool(database_url, max_size=2)
    settings = bridge_settings(tmp_path, database_url)
    async with running_bridge(settings, pool, dev_server_env.client) as url, httpx.AsyncClient(base_url=url) as client:
        await pool.close()
        listed = await client.get("/api/deals", headers=ADMIN_BEARER)
        ready = await client.get("/readyz")
    _error(listed, 500, "internal")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"postgres": False, "temporal": True}
