"""What every route of one bridge app shares, built once by `create_app` and found by request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from temporalio.client import Client

from bridge.deals import Deals
from bridge.inbox import Inbox
from bridge.metrics import BridgeMetrics
from bridge.ratelimit import RateLimiter
from bridge.relay import Relay
from dealflow.settings import Settings


@dataclass(frozen=True)
class BridgeState:
    settings: Settings
    pool: asyncpg.Pool
    temporal: Client
    deals: Deals
    inbox: Inbox
    relay: Relay
    metrics: BridgeMetrics
    portal_limiter: RateLimiter
    webhook_limiter: RateLimiter


def bridge_state(request: Request) -> BridgeState:
    """The state of the app serving this request."""
    return request.app.state.bridge


async def _bridge_dependency(request: Request) -> BridgeState:
    """Async on purpose: FastAPI runs a plain function dependency in its thread pool, a hop
    through another thread (and the GIL) on every request."""
    return bridge_state(request)


#: Route parameter type of the shared state.
Bridge = Annotated[BridgeState, Depends(_bridge_dependency)]


async def portal_rate_limit(request: Request) -> None:
    await bridge_state(request).portal_limiter(request)


async def webhook_rate_limit(request: Request) -> None:
    await bridge_state(request).webhook_limiter(request)
