"""Stripe webhooks held back and sent at a chosen moment: the sandbox delivers its events to a
catcher here instead of the bridge, and a sender POSTs them to the bridge's webhook endpoint,
signed at that moment as Stripe signs (`stripe_sandbox.webhooks.sign`, the scheme the bridge
verifies), each answer timed."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dealflow.serve import serve_app
from demo.http import DemoStepFailed
from stripe_sandbox.webhooks import sign


class WebhookCatcher:
    """Takes every webhook the sandbox sends, keeps its body as sent, by the deal it names."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[str]] = defaultdict(list)
        self._arrived = asyncio.Condition()
        self.url = ""

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[WebhookCatcher]:
        app = Starlette(routes=[Route("/events", self._take, methods=["POST"])])
        async with serve_app(app) as base_url:
            self.url = f"{base_url}/events"
            yield self

    async def _take(self, request: Request) -> Response:
        body = (await request.body()).decode()
        deal_id = json.loads(body)["data"]["object"].get("metadata", {}).get("deal_id")
        async with self._arrived:
            self.bodies[deal_id].append(body)
            self._arrived.notify_all()
        return Response(status_code=200)

    async def events_of(self, deal_id: str, types: frozenset[str], timeout: float) -> list[str]:
        """Every event the sandbox sent for the deal, in the order they came, once those of
        `types` are among them: a card payment's events that fund it come with others Stripe
        sends beside them (`payment_intent.created`, `charge.succeeded`), in any order, as its
        deliveries run at once; a deal's events are POSTed again all together, as Stripe would."""

        def arrived() -> bool:
            return types <= {json.loads(body)["type"] for body in self.bodies[deal_id]}

        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(arrived), timeout)
            except TimeoutError as error:
                raise DemoStepFailed(
                    f"the sandbox sent no {' and '.join(sorted(types))} for {deal_id} in {timeout:.0f}s"
                ) from error
            return list(self.bodies[deal_id])


@dataclass(frozen=True)
class Delivery:
    #: time.monotonic() when the POST began, and how long the bridge took to answer it.
    sent_at: float
    seconds: float
    status: int


class WebhookSender:
    """POSTs event bodies to the bridge as Stripe would, from one source address (close it with
    `aclose`, or use it in `contextlib.aclosing`)."""

    def __init__(self, bridge_url: str, secret: str, *, source: str = "127.0.0.1") -> None:
        self.url = f"{bridge_url.rstrip('/')}/webhooks/stripe"
        self.secret = secret
        transport = httpx.AsyncHTTPTransport(local_address=source)
        self._http = httpx.AsyncClient(transport=transport, timeout=30)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, body: str) -> Delivery:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, self.secret, int(time.time())),
        }
        sent_at = time.monotonic()
        response = await self._http.post(self.url, content=body.encode(), headers=headers)
        return Delivery(sent_at, time.monotonic() - sent_at, response.status_code)
