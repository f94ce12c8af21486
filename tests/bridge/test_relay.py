"""Nothing is lost while Temporal is down: the webhook is stored, and delivered once it is back.

A dev server of its own (its history in a file) is stopped after the client signs, the client
pays through the sandbox while it is down, the bridge is stopped too, and the same server is
started again on the same port and file. The bridge answered Stripe 2xx all along; a new bridge
process (nothing in memory) finds the stored events and delivers them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bridge.app import BridgeOptions, create_app
from bridge.relay import Backoff, RelayPolicy
from dealflow.binaries import temporal_cli
from dealflow.contract import SEARCH_ATTRIBUTES
from dealflow.serve import free_port, serve_app
from devstack.stack import Stack, StackConfig, run_stack
from tests.bridge_support import (
    BROWSER_HEADERS,
    FUNDED_STATES,
    eventually,
    milestone,
    open_deal,
    sign_in_portal,
    wait_for_summary,
)


class RestartableTemporal:
    """A dev server that can be stopped and started again with its state intact."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.database = str(directory / "temporal.db")
        self.env: WorkflowEnvironment | None = None

    async def start(self) -> None:
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            port=self.port,
            dev_server_database_filename=self.database,
            search_attributes=SEARCH_ATTRIBUTES,
            data_converter=pydantic_data_converter,
            ui=False,
        )

    async def stop(self) -> None:
        if self.env is not None:
            await self.env.shutdown()
            self.env = None


@pytest.fixture
async def temporal_server(tmp_path: Path) -> AsyncIterator[RestartableTemporal]:
    server = RestartableTemporal(tmp_path)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def stack_on_own_server(
    temporal_server: RestartableTemporal, database_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The stack on the restartable server; each test runs its own bridge (see `bridge`)."""
    client = await Client.connect(f"127.0.0.1:{temporal_server.port}", data_converter=pydantic_data_converter)
    config = StackConfig(
        home=tmp_path / "home",
        database_url=database_url,
        task_queue=f"deals-{uuid.uuid4().hex[:8]}",
        bridge_port=free_port(),
        webhook_retry_base_seconds=0.2,
        run_bridge=False,
    )
    async with run_stack(config, client) as stack:
        yield stack


@asynccontextmanager
async def bridge(stack: Stack) -> AsyncIterator[None]:
    """A bridge process's life: a new app on the stack's bridge port, with a quick relay."""
    app = create_app(
        settings=stack.settings,
        pool=stack.pool,
        temporal=stack.client,
        options=BridgeOptions(
            relay=RelayPolicy(interval=0.3, retry=Backoff(longest=timedelta(seconds=2))),
            temporal_timeout=timedelta(seconds=2),
        ),
    )
    async with serve_app(app, port=urlsplit(stack.bridge_url).port or 0):
        yield


async def _inbox(stack: Stack) -> list[asyncpg.Record]:
    """The deal's events the relay is to deliver (the payment's second event is folded, its
    echoes such as charge.succeeded are kept and ignored)."""
    return await stack.pool.fetch(
        """SELECT status, attempts FROM stripe_events
           WHERE deal_id = 'relay-outage' AND status NOT IN ('folded', 'ignored')
           ORDER BY received_seq"""
    )


async def test_event_received_while_temporal_is_down_survives_a_bridge_restart_and_is_delivered(
    stack_on_own_server: Stack, temporal_server: RestartableTemporal
) -> None:
    stack = stack_on_own_server
    async with bridge(stack):
        async with httpx.AsyncClient(base_url=stack.bridge_url, headers=BROWSER_HEADERS) as http:
            await sign_in_portal(http, await open_deal(stack, "relay-outage"))
        summary = await wait_for_summary(
            stack, "relay-outage", lambda s: milestone(s, "build").checkout_session_id is not None,
            what="a checkout",
        )
        session_id = milestone(summary, "build").checkout_session_id

        await temporal_server.stop()
        async with stack.sandbox_control() as sandbox:
            paid = await sandbox.pay(session_id)
            assert paid["outcome"] == "paid", paid

        async def waiting_after_a_failed_attempt() -> bool:
            rows = await _inbox(stack)
            tried = any(r["attempts"] >= 1 for r in rows)
            return tried and all(r["status"] == "pending" for r in rows)

        await eventually(waiting_after_a_failed_attempt, what="the events to wait in the inbox")
        async with stack.sandbox_control() as sandbox:
            deliveries = (await sandbox.deliveries())["attempts"]
        assert deliveries and all(d["status_code"] == 200 for d in deliveries), "Stripe was answered 2xx"

    await temporal_server.start()
    async with bridge(stack):

        async def all_delivered() -> bool:
            rows = await _inbox(stack)
            return bool(rows) and all(r["status"] == "delivered" for r in rows)

        await eventually(all_delivered, timeout=30, what="the new bridge's relay to deliver the stored events")
    funded = await wait_for_summary(
        stack, "relay-outage", lambda s: milestone(s, "build").state in FUNDED_STATES, what="funding"
    )
    assert milestone(funded, "build").funded == milestone(funded, "build").amount
