"""The bare twin's worker: `TwinWorkflow` and its no-op activities, with the pollers, sticky
timeout, shutdown grace and activation flag of `worker.py`, in a process of its own.

    python -m benchmarks.twin_worker --task-queue twin     (TEMPORAL_ADDRESS as for worker.py)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from benchmarks.figures import ROOT
from benchmarks.stack import BenchStack, stopped_if_one_dies
from benchmarks.twin import TwinWorkflow, no_op
from benchmarks.twin_plan import TwinPlan
from chaos.stack import ChildProcess
from dealflow.settings import Settings, load_settings
from dealflow.temporal import apply_activation_jobs_as_one_batch, connect
from worker import GRACEFUL_SHUTDOWN, POLLERS

READY_LINE = "twin worker polling task queue"
#: worker.py's default (DEALFLOW_WORKER_STICKY_TIMEOUT_SECONDS).
STICKY_TIMEOUT = timedelta(seconds=Settings.model_fields["worker_sticky_timeout_seconds"].default)


def twin_worker(client: Client, task_queue: str) -> Worker:
    """The twin's worker, with worker.py's pollers, sticky timeout, shutdown and activation flag."""
    return apply_activation_jobs_as_one_batch(
        Worker(
            client,
            task_queue=task_queue,
            workflows=[TwinWorkflow],
            activities=[no_op],
            workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=POLLERS),
            activity_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=POLLERS),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        )
    )


@asynccontextmanager
async def twin_worker_process(bench: BenchStack, task_queue: str) -> AsyncIterator[ChildProcess]:
    """The twin's worker as a process of its own, beside the stack's worker."""

    async def polling(child: ChildProcess) -> bool:
        return READY_LINE in child.new_output()

    search_path = os.pathsep.join(filter(None, [str(ROOT), bench.environment.get("PYTHONPATH")]))
    child = ChildProcess(
        "twin worker",
        [sys.executable, "-m", "benchmarks.twin_worker", "--task-queue", task_queue],
        {**bench.environment, "PYTHONPATH": search_path},
        bench.home / "twin-worker.log",
        polling,
    )
    await child.start()
    try:
        async with stopped_if_one_dies([child]):
            yield child
    finally:
        await child.stop()


async def drive_twin(client: Client, plan: TwinPlan, workflow_id: str, task_queue: str) -> None:
    """Start one twin and send it the plan's updates and signals in order, to its end."""
    handle = await client.start_workflow(
        TwinWorkflow.run, plan, id=workflow_id, task_queue=task_queue
    )
    for number, trigger in enumerate(plan.triggers):
        if trigger.kind == "signal":
            await handle.signal(trigger.name)
            continue
        while True:  # as the bridge does: asked again, under the same id, when Temporal is slow
            try:
                await handle.execute_update(trigger.name, id=f"{workflow_id}-{number}")
                break
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                continue
    await handle.result()


async def _serve(task_queue: str) -> None:
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with twin_worker(await connect(load_settings()), task_queue):
        print(f"{READY_LINE} {task_queue!r}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run the bare twin's worker (see benchmarks/deal_throughput.py)."
    )
    parser.add_argument("--task-queue", required=True)
    asyncio.run(_serve(parser.parse_args().task_queue))


if __name__ == "__main__":
    main()
