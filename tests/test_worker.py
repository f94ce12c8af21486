"""worker.py as an operator runs it: it polls, SIGTERM or SIGINT stops it cleanly, and its capacity
comes from the DEALFLOW_WORKER_* settings (tests/dealflow/test_settings.py: a bad one stops it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import PollerBehaviorSimpleMaximum
from temporalio.worker.workflow_sandbox import SandboxRestrictions

from dealflow.settings import Settings
from dealflow.workflow_runner import ContextFreeSandboxedWorkflowRunner
from devstack.mailsink import MailSink
from tests.activities.test_email import mail
from tests.bridge_support import bridge_settings
from tests.paths import ROOT
from worker import build_activities, build_worker


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
        "DEALFLOW_LOG_FORMAT": "json",  # as in production
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
        messages = [json.loads(line)["message"] for line in (log + rest).splitlines()]
        assert any(m.startswith("worker polling task queue") for m in messages)
        assert "worker stopped" in messages
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_worker_capacity_comes_from_the_settings(dev_server_env: WorkflowEnvironment) -> None:
    settings = Settings(
        _env_file=None,
        DEALFLOW_TASK_QUEUE="worker-capacity",
        DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS=150,
        DEALFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS=30,
        DEALFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES=40,
        DEALFLOW_WORKER_WORKFLOW_POLLERS=6,
        DEALFLOW_WORKER_ACTIVITY_POLLERS=3,
        DEALFLOW_WORKER_STICKY_TIMEOUT_SECONDS=1.5,
    )
    worker = build_worker(dev_server_env.client, settings, [])
    config = worker.config()
    assert config.get("max_cached_workflows") == 150
    assert config.get("max_concurrent_workflow_tasks") == 30
    assert config.get("max_concurrent_activities") == 40
    assert config.get("workflow_task_poller_behavior") == PollerBehaviorSimpleMaximum(maximum=6)
    assert config.get("activity_task_poller_behavior") == PollerBehaviorSimpleMaximum(maximum=3)
    assert config.get("sticky_queue_schedule_to_start_timeout") == timedelta(seconds=1.5)
    shared = config.get("workflow_runner")
    # dealflow's converter takes no serialization context (tests/dealflow/test_workflow_runner.py)
    assert isinstance(shared, ContextFreeSandboxedWorkflowRunner)
    assert shared.restrictions.passthrough_all_modules
    async with worker:  # it starts and polls with these numbers
        pass

    per_run = build_worker(
        dev_server_env.client, settings.model_copy(update={"worker_sandbox_imports": "per-run"}), []
    ).config().get("workflow_runner")
    assert isinstance(per_run, ContextFreeSandboxedWorkflowRunner)
    assert per_run.restrictions == SandboxRestrictions.default



class QuitCountingSink(MailSink):
    """The dev mail sink, counting the connections that said QUIT."""

    quits = 0

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"


async def test_the_workers_mail_connections_say_quit_when_it_stops(
    tmp_path: Path, database_url: str, db_pool: asyncpg.Pool
) -> None:
    """The worker keeps SMTP connections open between mails; its resources close them politely,
    not by dropping them when the process exits."""
    sink = QuitCountingSink(tmp_path / "mail")
    await sink.start()
    try:
        settings = bridge_settings(
            tmp_path, database_url, SMTP_URL=sink.url, DEALFLOW_DELIVERY_SECRET="d" * 32
        )
        async with AsyncExitStack() as resources, httpx.AsyncClient() as http:
            activities = build_activities(settings, db_pool, http, http, resources)
            [send_email] = [a for a in activities if getattr(a, "__name__", "") == "send_email"]
            await ActivityEnvironment().run(send_email, mail())
            assert len(sink.messages) == 1 and sink.quits == 0
        assert sink.quits == 1
    finally:
        await sink.stop()
