"""Poison at the bridge's doors, on real Postgres and the real Temporal dev server.

Text a deal must never keep (NUL, lone surrogates, control characters, line breaks in one-line
fields) is refused with a 4xx naming the field before anything is signalled or stored; forged
link tokens, CSRF values, cursors and session cookies are 4xx, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from bridge.dashboard import SESSION_COOKIE
from dealflow.links import make_token
from dealflow.messages import DealStage
from devstack.stack import Stack
from tests.bridge_support import (
    ADMIN_TOKEN,
    BROWSER_HEADERS,
    SECRET_KEY,
    VENDOR_TOKEN,
    WEBHOOK_SECRET,
    bridge_settings,
    deal_status,
    open_deal,
    post_form,
    running_bridge,
    session_completed,
    signed,
)
from tests.dealflow.test_text_rules import MALFORMED_CURSORS, MALFORMED_TOKENS

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VENDOR = {"Authorization": f"Bearer {VENDOR_TOKEN}"}
ARTIFACT = {"name": "site.zip", "url": "https://files.example/site.zip", "sha256": "ab" * 32}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DELIVERABLES = "/api/vendor/deals/no-such-deal/milestones/build/deliverables"


@pytest.fixture
async def http(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    """A bridge with no worker: a 404 for the deal proves a request got past every check."""
    async with (
        running_bridge(bridge_settings(tmp_path, database_url), db_pool, dev_server_env.client) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


def _refused(response: httpx.Response, field: str, problem: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert problem in error["message"]


# --------------------------------------------------------------------------- the portal


async def test_a_nul_in_the_signers_name_is_refused_and_the_deal_keeps_flowing(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=BROWSER_HEADERS) as http:
        page = await http.get(await open_deal(stack, "poison-sign"))
        for name, problem in [
            ("Casey\x00Client", "Your full name: contains a NUL byte"),
            ("Casey Client\r\nBcc: all@example.com", "Your full name: contains a line break"),
            ("Casey \x1b[31mClient", "Your full name: contains the control character U+001B"),
        ]:
            refused = await post_form(http, page, "sign-form", full_name=name, consent="true")
            assert refused.status_code == 422, refused.text
            assert problem in refused.text
        status = await deal_status(stack, "poison-sign")
        assert status.stage == DealStage.SOW_SENT and status.signature is None
        assert not [entry for entry in status.timeline if entry.kind == "rejected"], "nothing reached the deal"
        metrics = (await http.get("/metrics")).text
        assert 'dealflow_bridge_actions_total{action="sign_sow",outcome="refused"} 3.0' in metrics

        signed_ok = await post_form(http, page, "sign-form", full_name="Zoë Ångström", consent="true")
        assert signed_ok.status_code == 200, signed_ok.text
    status = await deal_status(stack, "poison-sign")
    assert status.signature is not None and status.signature.signer_name == "Zoë Ångström"


def _query_value(text: str) -> str:
    """Percent-encoded as a client sends it; a lone surrogate goes as the bytes UTF-8 forbids."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


#: Invalid UTF-8 and escapes of a NUL, as raw query bytes: the bridge decodes them itself.
RAW_VALUES = ["%ff%fe.%ed%a0%80", "%00.%00", "%C3%A9.%C3%A9", "%E2%80%A8"]


def _form(**fields: str) -> str:
    return "&".join(f"{name}={value}" for name, value in fields.items())


@pytest.mark.parametrize("token", [*map(_query_value, MALFORMED_TOKENS), *RAW_VALUES])
async def test_malformed_link_tokens_are_a_403_page(http: httpx.AsyncClient, token: str) -> None:
    page = await http.get(f"/portal/d1?token={token}")
    assert page.status_code == 403, page.text
    assert "This link is not valid" in page.text
    form = await http.post("/portal/d1/sign", content=_form(token=token, full_name="Casey", consent="true"), headers=FORM)
    assert form.status_code == 403, form.text


@pytest.mark.parametrize("csrf", [*map(_query_value, ["é" * 43, "\x00" * 43, "A" * 43, "", "٣" * 43]), *RAW_VALUES])
async def test_malformed_csrf_values_are_a_403_page(http: httpx.AsyncClient, csrf: str) -> None:
    token = make_token(SECRET_KEY, "d1", datetime.now(UTC) + timedelta(days=1))
    fields = _form(token=token, csrf=csrf, nonce="n" * 24, full_name="Casey", consent="true")
    response = await http.post("/portal/d1/sign", content=fields, headers=FORM)
    assert response.status_code == 403, response.text
    assert "out of date" in response.text


@pytest.mark.parametrize("cookie", ["é.é", "ä" * 60, MALFORMED_TOKENS[-1], "a.b"])
async def test_malformed_session_cookies_are_the_login_page(http: httpx.AsyncClient, cookie: str) -> None:
    response = await http.get("/dashboard", headers={"Cookie": f"{SESSION_COOKIE}={cookie}".encode("latin-1")})
    assert response.status_code == 401, response.text


# --------------------------------------------------------------------------- vendor and admin APIs


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"summary": "first cut", "artifacts": [{**ARTIFACT, "name": "site\r\n.zip"}]}, "artifacts[0].name", "line break"),
        ({"summary": "first cut", "artifacts": [{**ARTIFACT, "name": "site\x00.zip"}]}, "artifacts[0].name", "NUL"),
        ({"summary": "first\x00cut", "artifacts": [ARTIFACT]}, "summary", "NUL"),
        ({"summary": "first \x1b cut", "artifacts": [ARTIFACT]}, "summary", "U+001B"),
        ({"summary": "first \ud800 cut", "artifacts": [ARTIFACT]}, "summary", "unicode"),
        ({"summary": "first cut", "artifacts": [ARTIFACT], "\ud800": 1}, "body", "unicode"),
    ],
)
async def test_vendor_text_is_refused_naming_the_field(
    http: httpx.AsyncClient, body: dict, field: str, problem: str
) -> None:
    raw = json.dumps(body).encode()  # ASCII, with \u escapes: a lone surrogate as a client sends it
    response = await http.post(DELIVERABLES, content=raw, headers={**VENDOR, "Content-Type": "application/json"})
    _refused(response, field, problem)


async def test_multi_line_text_passes_every_check(http: httpx.AsyncClient) -> None:
    body = {"summary": "first cut:\r\n\t- home page\n\t- contact page", "artifacts": [ARTIFACT]}
    response = await http.post(DELIVERABLES, json=body, headers=VENDOR)
    assert response.status_code == 404, response.text  # on to Temporal, which has no such deal


@pytest.mark.parametrize(
    ("path", "body", "field", "problem"),
    [
        ("cancel", {"reason": "client\x00 withdrew"}, "reason", "NUL"),
        ("cancel", {"reason": "client withdrew", "requested_by": "ops\nteam"}, "requested_by", "line break"),
        ("disputes/resolve", {"milestone_key": "build", "resolution": "refund", "notes": "ok\x07"}, "notes", "U+0007"),
    ],
)
async def test_admin_text_is_refused_naming_the_field(
    http: httpx.AsyncClient, path: str, body: dict, field: str, problem: str
) -> None:
    _refused(await http.post(f"/api/deals/no-such-deal/{path}", json=body, headers=ADMIN), field, problem)


@pytest.mark.parametrize("cursor", [*map(_query_value, MALFORMED_CURSORS), *RAW_VALUES, "A" * 300])
async def test_malformed_cursors_are_422(http: httpx.AsyncClient, cursor: str) -> None:
    response = await http.get(f"/api/deals?cursor={cursor}", headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "cursor"


# --------------------------------------------------------------------------- Stripe webhooks


def _signed_bytes(body: bytes) -> tuple[bytes, dict[str, str]]:
    """Signed as Stripe signs: HMAC-SHA256 over `<t>.` and the raw bytes."""
    timestamp = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={timestamp},v1={digest}", "Content-Type": "application/json"}


def _with_object(**fields: object) -> tuple[bytes, dict[str, str]]:
    event = session_completed("acme-site", "build", 120000)
    event["data"]["object"].update(fields)
    return signed(event)


def _with_metadata(**metadata: str) -> tuple[bytes, dict[str, str]]:
    event = session_completed("acme-site", "build", 120000)
    event["data"]["object"]["metadata"].update(metadata)
    return signed(event)


def _with_event(**fields: object) -> tuple[bytes, dict[str, str]]:
    return signed({**session_completed("acme-site", "build", 120000), **fields})


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(lambda: _with_object(description="hello\x00"), "NUL", id="nul-in-any-string"),
        pytest.param(lambda: _with_object(**{"bad\x00key": 1}), "a key contains a NUL", id="nul-in-a-key"),
        pytest.param(lambda: _with_object(description="\ud800"), "lone surrogate", id="lone-surrogate"),
        pytest.param(lambda: _with_metadata(deal_id="acme\r\nsite"), "metadata.deal_id", id="crlf-in-deal-id"),
        pytest.param(lambda: _with_event(id="evt_\x1b1"), "event_id", id="control-in-event-id"),
        pytest.param(lambda: _with_event(created=10**20), "not a Stripe event", id="created-out-of-range"),
        pytest.param(lambda: _with_object(amount_total=10**30), "out of range", id="amount-out-of-range"),
        pytest.param(lambda: _signed_bytes(b'{"id": "evt_1", "amount": NaN}'), "not JSON", id="nan"),
        pytest.param(lambda: _signed_bytes(b"[" * 100_000), "not JSON", id="deep-nesting"),
        pytest.param(lambda: _signed_bytes(b'{"id": "\xff\xfe"}'), "", id="not-utf-8"),
        pytest.param(lambda: _signed_bytes(b'["not", "an", "event"]'), "not a JSON object", id="not-an-object"),
    ],
)
async def test_signed_bodies_the_inbox_cannot_store_are_400_and_not_stored(
    http: httpx.AsyncClient, db_pool: asyncpg.Pool, make, problem: str
) -> None:
    body, headers = make()
    response = await http.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert problem in response.json()["error"]["message"]
    assert await db_pool.fetchval("SELECT count(*) FROM stripe_events") == 0


async def test_stripe_strings_are_kept_verbatim_controls_included(
    http: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    body, headers = _with_object(description="line one\nline two \x1b\u0085 \ud83d\ude00")
    response = await http.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200, response.text
    stored = await db_pool.fetchval("SELECT payload->'data'->'object'->>'description' FROM stripe_events")
    assert stored == "line one\nline two \x1b\u0085 \U0001f600"


@pytest.mark.parametrize("header_t", [" t=abc", " t=²", " t=" + "9" * 5000, "t=-1", "t=" + "9" * 30])
async def test_malformed_signature_timestamps_are_400(http: httpx.AsyncClient, header_t: str) -> None:
    """An item with a blank before `t` is one the library skips; our own clock check reads it."""
    body, headers = signed(session_completed("acme-site", "build", 120000))
    header = f"v0=x,{header_t},{headers.pop('Stripe-Signature')}".encode("latin-1")
    response = await http.post("/webhooks/stripe", content=body, headers={**headers, "Stripe-Signature": header})
    assert response.status_code == 400, response.text

