"""Helpers of the bridge tests: a bridge served on its own port, signed Stripe events, deal specs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import stripe
from temporalio.client import Client

from bridge.app import BridgeOptions, create_app
from dealflow.models import DealSpec
from dealflow.serve import serve_app
from dealflow.settings import Settings

T = TypeVar("T")

WEBHOOK_SECRET = "whsec_" + "b" * 32
ADMIN_TOKEN = "adm_" + "a1" * 16
VENDOR_TOKEN = "vnd_" + "v2" * 16
SECRET_KEY = "k" * 40


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
