"""What the Stripe contract tests and the payments activity tests share: a running sandbox, a
webhook receiver that trusts nothing but `stripe.Webhook.construct_event`, and a poll helper.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dealflow.serve import serve_app
from stripe_sandbox import SandboxConfig, create_app
from stripe_sandbox.control import SandboxControl

WEBHOOK_SECRET = "whsec_contract_suite_secret_0123456789"
#: Webhook retries wait 50 ms, then 100 ms, ... so retry tests take a fraction of a second.
FAST_RETRY_BASE = 0.05

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, timeout: float = 5.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class WebhookReceiver:
    """A local endpoint that accepts only events whose signature `construct_event` verifies."""

    secret: str
    events: list[stripe.Event] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    attempts: int = 0
    _failures_left: int = 0

    def fail_next(self, count: int) -> None:
        """Answer 500 to the next `count` deliveries, as a receiver that is down would."""
        self._failures_left = count

    async def _handle(self, request: Request) -> Response:
        self.attempts += 1
        if self._failures_left > 0:
            self._failures_left -= 1
            return Response("down for maintenance", status_code=500)
        payload = await request.body()
        try:
            event = stripe.Webhook.construct_event(
                payload, request.headers.get("stripe-signature"), self.secret
            )
        except (stripe.SignatureVerificationError, ValueError) as error:
            self.rejected.append(str(error))
            return Response("bad signature", status_code=400)
        self.events.append(event)
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/webhook", self._handle, methods=["POST"])])

    def about(self, object_id: str) -> list[stripe.Event]:
        return [event for event in self.events if event.data.object.id == object_id]

    async def wait_for(
        self, object_id: str, event_type: str, *, timeout: float = 5.0
    ) -> stripe.Event:
        def found() -> stripe.Event | None:
            return next((e for e in self.about(object_id) if e.type == event_type), None)

        return await eventually(found, timeout=timeout, what=f"{event_type} for {object_id}")


@dataclass
class RunningSandbox:
    url: str
    app: Starlette
    control: SandboxControl
    receiver: WebhookReceiver
    #: Where the receiver listens (the sandbox's webhook URL unless a test changed it).
    receiver_url: str

    @property
    def api_key(self) -> str:
        """The secret key this sandbox issued: the only one it accepts."""
        return self.app.state.store.state.api_key

    def client(
        self, *, max_network_retries: int = 0, api_key: str | None = None
    ) -> stripe.StripeClient:
        return stripe.StripeClient(
            api_key or self.api_key,
            base_addresses={"api": self.url},
            max_network_retries=max_network_retries,
        )


@asynccontextmanager
async def running_sandbox(**config: Any) -> AsyncIterator[RunningSandbox]:
    """A sandbox on a free port whose webhooks go to a fresh receiver on another free port."""
    receiver = WebhookReceiver(config.get("webhook_secret", WEBHOOK_SECRET))
    async with serve_app(receiver.app()) as receiver_base:
        receiver_url = f"{receiver_base}/webhook"
        settings = {
            "webhook_url": receiver_url,
            "webhook_secret": WEBHOOK_SECRET,
            "retry_base_seconds": FAST_RETRY_BASE,
            "sweep_interval_seconds": 0.1,
            **config,
        }
        app = create_app(SandboxConfig(**settings))
        async with (
            serve_app(app) as url,
            SandboxControl(url, token=app.state.control_token) as control,
        ):
            yield RunningSandbox(url, app, control, receiver, receiver_url)


def session_params(amount: int = 5000, **extra: Any) -> dict[str, Any]:
    """A one-line Checkout Session in payment mode, as dealflow creates them."""
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": amount,
                    "product_data": {"name": "Design"},
                },
            }
        ],
        "success_url": "https://example.com/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://example.com/cancelled",
        **extra,
    }
