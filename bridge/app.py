"""The bridge's FastAPI app and its runner.

    dealflow bridge [--host H] [--port P]

`create_app` takes its dependencies (settings, Postgres pool, Temporal client) so that tests run
the very app a user runs against real services. The app's lifespan runs the inbox relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from temporalio.client import Client

from bridge import (
    admin,
    admin_vendors,
    codec,
    dashboard,
    health,
    portal,
    vendor,
    vendor_page,
    webhooks,
)
from bridge.body_limit import MAX_BODY_BYTES, BodyLimitMiddleware
from bridge.deals import Deals
from bridge.errors import install_error_handlers
from bridge.inbox import Inbox
from bridge.metrics import BridgeMetrics
from bridge.pages import Pages
from bridge.ratelimit import RateLimit, RateLimiter
from bridge.relay import Relay, RelayPolicy
from bridge.state import BridgeState
from bridge.tracing import trace_requests
from dealflow.db import create_pool, database_url
from dealflow.logs import TEXT_FORMAT, setup_process_logging
from dealflow.serve import PortInUse, check_port_free, serve_app
from dealflow.settings import ConfigError, Settings, load_settings
from dealflow.telemetry import start_tracing, tracing
from dealflow.temporal import connect

log = logging.getLogger("dealflow.bridge")

#: Settings the bridge cannot run without (and at least one operator: DEALFLOW_ADMIN_TOKEN or
#: DEALFLOW_OPERATORS). In dev the first and the admin token are generated per stack.
REQUIRED_SETTINGS = (
    "DEALFLOW_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
)


@dataclass(frozen=True)
class BridgeOptions:
    """Tunables with production defaults; tests shorten the relay interval or tighten limits."""

    #: Per client address: people click a few times a minute, but an office behind one NAT
    #: address (or `dealflow demo --deals 50`) is many people at once.
    portal_rate: RateLimit = field(default_factory=lambda: RateLimit(per_second=10, burst=60))
    #: Stripe sends bursts from a few addresses; generous, but still bounded.
    webhook_rate: RateLimit = field(default_factory=lambda: RateLimit(per_second=100, burst=500))
    relay: RelayPolicy = field(default_factory=RelayPolicy)
    #: Deadline of each Temporal call (query, update, signal).
    temporal_timeout: timedelta = timedelta(seconds=15)
    max_body_bytes: int = MAX_BODY_BYTES


def create_app(
    *, settings: Settings, pool: asyncpg.Pool, temporal: Client, options: BridgeOptions | None = None
) -> FastAPI:
    """The bridge app on the given services. Raises ConfigError if a required setting is missing."""
    options = options or BridgeOptions()
    for name in REQUIRED_SETTINGS:
        settings.require(name)
    if not settings.operators:
        raise ConfigError(
            "no operator can sign in: set DEALFLOW_OPERATORS (name:token,...) or DEALFLOW_ADMIN_TOKEN"
        )
    metrics = BridgeMetrics()
    deals = Deals(temporal, timeout=options.temporal_timeout)
    relay = Relay(
        pool,
        deals,
        metrics,
        concurrency=settings.relay_concurrency,
        policy=options.relay,
        listen_url=database_url(settings),
    )
    state = BridgeState(
        settings=settings,
        pool=pool,
        temporal=temporal,
        deals=deals,
        inbox=Inbox(pool),
        relay=relay,
        metrics=metrics,
        portal_limiter=RateLimiter("portal", options.portal_rate, metrics.count_rate_limited),
        webhook_limiter=RateLimiter("webhook", options.webhook_rate, metrics.count_rate_limited),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(relay.run(), name="stripe-inbox-relay")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # Swagger UI served from the package, not a CDN: /docs works on a machine without internet.
    app = FastAPIOffline(
        title="dealflow bridge",
        summary="Stripe webhooks, the client portal, and the vendor and admin APIs of dealflow.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.bridge = state
    app.state.pages = Pages()
    install_error_handlers(app, html_prefix="/portal/", html_page=app.state.pages.error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=options.max_body_bytes)
    app.mount("/static", StaticFiles(packages=[("bridge", "static")]), name="static")
    for module in (webhooks, portal, vendor, vendor_page, admin, admin_vendors, dashboard, health, codec):
        app.include_router(module.router)
    if tracing():
        trace_requests(app)
    return app


async def serve_bridge(settings: Settings, *, host: str, port: int) -> None:
    """Connect Postgres (and Temporal, lazily), then serve until SIGINT/SIGTERM (exit 0).

    The bridge starts even while Temporal is down: webhooks wait in the inbox, /readyz says 503,
    and the relay delivers them once Temporal answers."""
    check_port_free(host, port, "--port")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    temporal = await connect(settings, lazy=True)
    pool = await create_pool(database_url(settings))
    try:
        app = create_app(settings=settings, pool=pool, temporal=temporal)
        async with serve_app(app, host=host, port=port, log_level="info", log_config=None) as url:
            log.info("bridge on %s (Stripe: %s)", url, settings.stripe_mode)
            await stop.wait()
            log.info("stopping: finishing open requests")
    finally:
        await pool.close()


def run_bridge(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Entry point of `dealflow bridge`: exits 2 on a configuration problem, naming the setting."""
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    try:
        settings = load_settings(need=REQUIRED_SETTINGS)
        setup_process_logging(settings)
        start_tracing(settings, "dealflow-bridge")
        asyncio.run(serve_bridge(settings, host=host, port=port))
    except (ConfigError, PortInUse) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
