"""The workflow tests' harness leaves the time-skipping server able to skip time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from tests.deal_harness import running_deal


async def test_a_deal_left_running_by_its_test_does_not_stop_time(env: WorkflowEnvironment) -> None:
    async with running_deal(env) as deal:
        await deal.sign()  # the deal now waits on its funding timers; its worker stops here

    # A timer of the deal firing on a task queue nobody polls any more would lock time skipping:
    # this sleep would then wait 60 real days.
    await asyncio.wait_for(env.sleep(timedelta(days=60)), timeout=30)
