"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from temporalio.service import RPCError

from bridge.quarantine import count_quarantined
from bridge.state import Bridge, BridgeState

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT = timedelta(seconds=3)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Postgres or Temporal is unreachable"}})
async def readyz(bridge: Bridge) -> JSONResponse:
    """Ready when both Postgres and Temporal answer; a balancer sends no traffic otherwise."""
    checks = {"postgres": await _postgres_ok(bridge), "temporal": await _temporal_ok(bridge)}
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


async def _postgres_ok(bridge: BridgeState) -> bool:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT.total_seconds()):
            return await bridge.pool.fetchval("SELECT 1") == 1
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def _temporal_ok(bridge: BridgeState) -> bool:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT.total_seconds()):
            return await bridge.temporal.service_client.check_health(timeout=_CHECK_TIMEOUT)
    except (RPCError, TimeoutError, RuntimeError):
        return False


@router.get("/metrics", response_class=Response)
async def metrics(bridge: Bridge) -> Response:
    """Prometheus text format; the inbox gauges are read from Postgres at scrape time."""
    if await _postgres_ok(bridge):
        stats = await bridge.inbox.stats()
        bridge.metrics.inbox_backlog.set(stats.backlog)
        bridge.metrics.inbox_undeliverable.set(stats.undeliverable)
        bridge.metrics.ledger_quarantined.set(await count_quarantined(bridge.pool))
    return Response(generate_latest(bridge.metrics.registry), media_type=CONTENT_TYPE_LATEST)
