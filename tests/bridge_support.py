"""Helpers of the bridge tests: a bridge served on its own port, signed Stripe events, deal specs."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import stripe
from temporalio.client import Client

from bridge.app import BridgeOptions, create_app
from bridge.inbox import Inbox, InboxStatus
from dealflow.contract import STATUS, SUMMARY
from dealflow.messages import (
    DealStatus,
    DealSummary,
    MilestoneState,
    MilestoneStatus,
    MilestoneSummary,
)
from dealflow.models import DealSpec, workflow_id_for
from dealflow.serve import serve_app
from dealflow.settings import Settings
from devstack.stack import Stack
from starter import start_deal

T = TypeVar("T")

WEBHOOK_SECRET = "whsec_" + "b" * 32
ADMIN_TOKEN = "adm_" + "a1" * 16
VENDOR_TOKEN = "vnd_" + "v2" * 16
SECRET_KEY = "k" * 40
ADMIN_BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bridge_settings(home: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DEALFLOW_ENV": "dev",
        "DEALFLOW_HOME": home,
        "DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DEALFLOW_SECRET_KEY": SECRET_KEY,
        "DEALFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
        "DEALFLOW_VENDOR_TOKEN": VENDOR_TOKEN,
        "DEALFLOW_PUBLIC_URL": "http://127.0.0.1:8000",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_bridge(
    settings: Settings, pool: asyncpg.Pool, temporal: Client, options: BridgeOptions | None = None
) -> AsyncIterator[str]:
    """The bridge app served by uvicorn on a free port; yields its base URL."""
    app = create_app(settings=settings, pool=pool, temporal=temporal, options=options)
    async with serve_app(app) as url:
        yield url


def stripe_event(
    event_type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created or int(time.time()),
        "livemode": livemode,
        "type": event_type,
        "data": {"object": obj},
    }


def session_completed(deal_id: str | None, milestone_key: str, amount: int, **event: Any) -> dict[str, Any]:
    metadata = {"deal_id": deal_id, "milestone_key": milestone_key} if deal_id else {}
    return stripe_event(
        "checkout.session.completed",
        {
            "id": f"cs_test_{uuid.uuid4().hex[:24]}",
            "object": "checkout.session",
            "amount_total": amount,
            "currency": "usd",
            "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
            "payment_status": "paid",
            "status": "complete",
            "metadata": metadata,
        },
        **event,
    )


def card_payment(deal_id: str, milestone_key: str, amount: int, intent_id: str, *, held: bool = False) -> dict[str, dict[str, Any]]:
    """The events Stripe sends for one card payment through Checkout, by type: the session's
    completion and its payment intent's (`amount_capturable_updated` when the card is held)."""
    metadata = {"deal_id": deal_id, "milestone_key": milestone_key}
    session = session_completed(deal_id, milestone_key, amount)
    session["data"]["object"]["payment_intent"] = intent_id
    intent_type = "payment_intent.amount_capturable_updated" if held else "payment_intent.succeeded"
    intent = stripe_event(
        intent_type,
        {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "currency": "usd",
            "capture_method": "manual" if held else "automatic",
            "status": "requires_capture" if held else "succeeded",
            "metadata": metadata,
        },
    )
    return {session["type"]: session, intent_type: intent}


def signed(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers Stripe would send for `event`."""
    body = json.dumps(event, indent=2)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp or int(time.time()))
    return body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}


def deal_spec(deal_id: str, **overrides: Any) -> DealSpec:
    data: dict[str, Any] = {
        "deal_id": deal_id,
        "title": "Bridge test deal",
        "currency": "usd",
        "client": {"name": "Casey Client", "email": "casey@client.example"},
        "vendor": {"name": "Vera Vendor", "email": "vera@vendor.example"},
        "sow": "Vera will build a small website for Casey: two pages, handed over as a zip file.",
        "milestones": [
            {"key": "build", "title": "Build the site", "amount": 120000, "due_in_days": 10},
            {"key": "polish", "title": "Polish and hand over", "amount": 30000, "due_in_days": 20},
        ],
    }
    data.update(overrides)
    return DealSpec.model_validate(data)


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 20, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self._current = {"action": attributes.get("action"), "fields": {}}
            self.forms[attributes.get("id") or f"form-{len(self.forms)}"] = self._current
        elif tag == "input" and self._current is not None and attributes.get("type") == "hidden":
            self._current["fields"][attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def page_forms(html: str) -> dict[str, dict[str, Any]]:
    """{form id: {"action": ..., "fields": {hidden name: value}}} of a portal page."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


# --------------------------------------------------------------------------- whole-stack deals

BROWSER_HEADERS = {"User-Agent": "PortalTest/1.0 (like a browser)"}
FUNDED_STATES = {MilestoneState.FUNDED, MilestoneState.IN_PROGRESS}


def mail_text(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain", "html"))
    return body.get_content() if body is not None else ""


def _portal_link_in(mail: EmailMessage, deal_id: str) -> str | None:
    match = re.search(rf"https?://\S+/portal/{re.escape(deal_id)}\?token=[A-Za-z0-9_.=-]+", mail_text(mail))
    return match.group(0) if match else None


async def portal_link_to(stack: Stack, deal_id: str, to: str) -> str:
    """The portal link in the first mail of the deal to `to` that carries one."""
    assert stack.mail is not None
    mail = await stack.mail.wait_for(lambda m: m["To"] == to and _portal_link_in(m, deal_id) is not None)
    link = _portal_link_in(mail, deal_id)
    assert link is not None
    return link


async def open_deal(stack: Stack, deal_id: str, **spec: Any) -> str:
    """Start a deal through the starter and return the portal link its SOW email carries."""
    await start_deal(
        stack.client,
        deal_spec(deal_id, **spec),
        stack.settings.task_queue,
        stack.settings.client_search_secret,
    )
    assert stack.mail is not None
    mail = await stack.mail.wait_for(lambda m: _portal_link_in(m, deal_id) is not None)
    link = _portal_link_in(mail, deal_id)
    assert link is not None
    return link


def link_token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def _query(stack: Stack, deal_id: str, name: str, answer: type[T]) -> T:
    return await stack.client.get_workflow_handle(workflow_id_for(deal_id)).query(name, result_type=answer)


async def deal_status(stack: Stack, deal_id: str) -> DealStatus:
    return await _query(stack, deal_id, STATUS, DealStatus)


async def deal_summary(stack: Stack, deal_id: str) -> DealSummary:
    return await _query(stack, deal_id, SUMMARY, DealSummary)


async def _wait_for(
    ask: Callable[[], Awaitable[T]], predicate: Callable[[T], bool], *, what: str, timeout: float
) -> T:
    async def check() -> T | None:
        answer = await ask()
        return answer if predicate(answer) else None

    return await eventually(check, timeout=timeout, what=what)


async def wait_for_status(
    stack: Stack, deal_id: str, predicate: Callable[[DealStatus], bool], *, what: str, timeout: float = 30
) -> DealStatus:
    """Poll the whole `status` until `predicate` holds (for what only it shows)."""
    return await _wait_for(lambda: deal_status(stack, deal_id), predicate, what=what, timeout=timeout)


async def wait_for_summary(
    stack: Stack, deal_id: str, predicate: Callable[[DealSummary], bool], *, what: str, timeout: float = 30
) -> DealSummary:
    """Poll the small `summary` until `predicate` holds: stage, milestone states, money."""
    return await _wait_for(lambda: deal_summary(stack, deal_id), predicate, what=what, timeout=timeout)


@overload
def milestone(deal: DealStatus, key: str) -> MilestoneStatus: ...
@overload
def milestone(deal: DealSummary, key: str) -> MilestoneSummary: ...
def milestone(deal: DealStatus | DealSummary, key: str) -> MilestoneStatus | MilestoneSummary:
    return next(m for m in deal.milestones if m.key == key)


async def post_form(http: httpx.AsyncClient, page: httpx.Response, form_id: str, **fields: str) -> httpx.Response:
    """Submit a form of a portal page as a browser would: its hidden fields plus `fields`."""
    form = page_forms(page.text)[form_id]
    return await http.post(form["action"], data={**form["fields"], **fields}, headers=BROWSER_HEADERS)


async def sign_in_portal(http: httpx.AsyncClient, link: str) -> None:
    page = await http.get(link)
    signed = await post_form(http, page, "sign-form", full_name="Casey Client", consent="true")
    assert signed.status_code == 200, signed.text


async def pay_milestone(stack: Stack, deal_id: str, key: str) -> DealSummary:
    """Pay the milestone's Checkout Session with 4242… through the sandbox; wait until funded."""
    summary = await wait_for_summary(
        stack, deal_id, lambda s: milestone(s, key).checkout_session_id is not None, what=f"a checkout for {key}"
    )
    session_id = milestone(summary, key).checkout_session_id
    async with stack.sandbox_control() as sandbox:
        paid = await sandbox.pay(session_id)
        assert paid["outcome"] == "paid", paid
    return await wait_for_summary(
        stack, deal_id, lambda s: milestone(s, key).state in FUNDED_STATES, what=f"{key} to be funded"
    )


VENDOR_DELIVERABLE = {
    "summary": "first cut of the site",
    "artifacts": [{"name": "site.zip", "url": "https://files.example/site.zip", "sha256": "ab" * 32}],
}


async def submit_deliverable(
    stack: Stack, deal_id: str, key: str, *, summary: str | None = None
) -> DealSummary:
    """Hand in work through the vendor API and wait until the milestone shows it delivered."""
    body = {**VENDOR_DELIVERABLE, "summary": summary or VENDOR_DELIVERABLE["summary"]}
    headers = {"Authorization": f"Bearer {stack.settings.vendor_token}"}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=headers) as http:
        response = await http.post(f"/api/vendor/deals/{deal_id}/milestones/{key}/deliverables", json=body)
        assert response.status_code == 200, response.text
    return await wait_for_summary(
        stack, deal_id, lambda s: milestone(s, key).state == MilestoneState.DELIVERED, what=f"{key} delivered"
    )


async def store_pending(pool: asyncpg.Pool, deal_id: str, event: dict[str, Any]) -> str:
    """One stored (pending) event of the deal, as the webhook route would keep it; its id."""
    await Inbox(pool).store(
        event_id=event["id"],
        event_type=event["type"],
        livemode=False,
        deal_id=deal_id,
        raw_body=json.dumps(event),
        status=InboxStatus.PENDING,
    )
    return event["id"]


async def store_pending_events(pool: asyncpg.Pool, deal_ids: list[str]) -> dict[str, list[str]]:
    """One stored (pending) payment event per entry of `deal_ids`, in that order, as the webhook
    route would keep them; the event ids by deal."""
    stored: dict[str, list[str]] = {}
    for deal_id in deal_ids:
        event_id = await store_pending(pool, deal_id, session_completed(deal_id, "build", 1000))
        stored.setdefault(deal_id, []).append(event_id)
    return stored
