"""`create_app(config)`: the sandbox as one ASGI app (Stripe's `/v1/` API, the hosted checkout
pages under `/c/pay/`, and the `/_sandbox/` controls), with its webhook sender and the sweeper
that expires sessions on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from stripe_sandbox.checkout_page import checkout_routes
from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.connect_page import connect_routes
from stripe_sandbox.control_api import control_routes
from stripe_sandbox.engine import Sandbox
from stripe_sandbox.faults import FaultInjector
from stripe_sandbox.store import Store
from stripe_sandbox.stripe_api import StripeApi
from stripe_sandbox.webhooks import RetryPolicy, WebhookDispatcher


async def _sweep_forever(sandbox: Sandbox, store: Store, interval: float) -> None:
    """Stripe expires sessions on its own; so does the sandbox, without waiting for a request."""
    while True:
        await asyncio.sleep(interval)
        sandbox.sweep()
        store.commit()


def create_app(config: SandboxConfig) -> Starlette:
    store = Store.open(
        config.state_file,
        webhook_url=config.webhook_url,
        webhook_secret=config.webhook_secret,
        api_key=config.api_key,
    )
    faults = FaultInjector()
    webhooks = WebhookDispatcher(
        store,
        faults,
        retry=RetryPolicy(
            config.retry_base_seconds, config.retry_max_seconds, config.webhook_max_attempts
        ),
        timeout_seconds=config.webhook_timeout_seconds,
        concurrency=config.webhook_concurrency,
    )
    sandbox = Sandbox(store, webhooks.enqueue)
    control_token = config.control_token or secrets.token_urlsafe(32)
    api = StripeApi(sandbox, store, faults, config.public_url)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await webhooks.start()
        sweeper = asyncio.create_task(_sweep_forever(sandbox, store, config.sweep_interval_seconds))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await webhooks.stop()
            store.close()

    routes = [
        Route("/v1/{path:path}", api.handle, methods=["GET", "POST", "DELETE"]),
        *checkout_routes(sandbox, store),
        *connect_routes(sandbox, store),
        *control_routes(sandbox, store, faults, webhooks, token=control_token),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.control_token = control_token
    app.state.store = store
    app.state.sandbox = sandbox
    return app
