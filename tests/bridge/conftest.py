"""Fixtures of the bridge tests that need stand-in deals."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.signal_log import SignalLog


@pytest.fixture
async def signal_log_queue(dev_server_env: WorkflowEnvironment) -> AsyncIterator[str]:
    """A worker running `SignalLog` on a task queue of this test's own."""
    queue = f"relay-{uuid.uuid4().hex[:8]}"
    async with Worker(dev_server_env.client, task_queue=queue, workflows=[SignalLog]):
        yield queue
