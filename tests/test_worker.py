"""worker.py as an operator runs it: it polls, and SIGTERM or SIGINT stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.paths import ROOT


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_worker_polls_then_stops_cleanly_on_a_signal(
    tmp_path: Path, database_url: str, dev_server_env: WorkflowEnvironment, stop_signal: signal.Signals
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEALFLOW_", "STRIPE_", "TEMPORAL_"))},
        "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "DEALFLOW_HOME": str(tmp_path),
        "DEALFLOW_TASK_QUEUE": f"worker-test-{stop_signal.name.lower()}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "worker.py"),
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        log = b""
        while b"worker polling task queue" not in log:
            line = await asyncio.wait_for(process.stderr.readline(), 60)
            assert line, f"worker exited early: {log.decode()}"
            log += line
        process.send_signal(stop_signal)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        rest = await process.stderr.read()
        assert b"worker stopped" in rest
        assert b"Traceback" not in log + rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
