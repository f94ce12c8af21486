"""`dealflow bridge` as a user runs it: refuses to start without its secrets, serves, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from dealflow.serve import free_port
from tests.bridge_support import WEBHOOK_SECRET, eventually, session_completed, signed


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEALFLOW_", "STRIPE_", "TEMPORAL_"))}
    return {**env, "DEALFLOW_HOME": str(home), **extra}


def test_missing_webhook_secret_stops_the_bridge_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dealflow.cli", "bridge", "--port", str(free_port())],
        env=_env(tmp_path, DATABASE_URL="postgresql://nobody@127.0.0.1:1/none"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "STRIPE_WEBHOOK_SECRET" in result.stderr


async def test_bridge_starts_while_temporal_is_down_and_keeps_webhooks(tmp_path: Path, database_url: str) -> None:
    """Stripe's webhooks must not be lost because Temporal is down when the bridge (re)starts."""
    port = free_port()
    env = _env(
        tmp_path,
        DATABASE_URL=database_url,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dealflow.cli", "bridge", "--port", str(port),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def healthy() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, timeout=30, what="the bridge to serve")
            assert (await http.get("/readyz")).status_code == 503
            body, headers = signed(session_completed("down-deal", "design", 150000))
            answer = await http.post("/webhooks/stripe", content=body, headers=headers)
            assert answer.status_code == 200
        connection = await asyncpg.connect(database_url)
        try:
            status = await connection.fetchval("SELECT status FROM stripe_events WHERE deal_id = 'down-deal'")
        finally:
            await connection.close()
        assert status == "pending"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0


async def test_bridge_serves_and_stops_on_sigterm(
    tmp_path: Path, database_url: str, dev_server_env: WorkflowEnvironment
) -> None:
    port = free_port()
    env = _env(
        tmp_path,
        DATABASE_URL=database_url,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        TEMPORAL_ADDRESS=dev_server_env.client.service_client.config.target_host,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dealflow.cli", "bridge", "--port", str(port),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=30, what="the bridge to be ready")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
