"""A DealWorkflow worker in a child process that tests can SIGKILL and start again.

Workflows run there, with the settings worker.py uses (20 pollers, the sandboxed runner)
and a 1-second sticky-queue timeout, so a task sent to a killed worker's sticky queue times out
soon and a fresh worker replays the whole history: the case that broke deals in the chaos runs.
Activities run in the test process (`LaggingFakes`), so the fake Stripe keeps its state across
kills and the test pays sessions as a client would.

    python -m tests.crash_support ADDRESS NAMESPACE TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from datetime import timedelta

from temporalio import activity
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from dealflow.messages import (
    DealSnapshot,
    EmailInput,
    EmailResult,
    LedgerBatch,
    LedgerEvent,
    LedgerWriteResult,
    PaymentIntentState,
    PaymentRecord,
)
from dealflow.temporal import apply_activation_jobs_as_one_batch
from dealflow.workflow_runner import sandboxed_runner
from tests.fakes import FakeActivities
from tests.paths import ROOT
from worker import POLLERS
from workflows.deal import DealWorkflow

READY = "ready"
#: Long enough for a status query to reach the fresh worker before the deal's task does.
STICKY_TIMEOUT = timedelta(seconds=3)
#: Workflow task failures a retry cannot get past: the deal stops there for good.
STUCK = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
}


#: How long a read of a payment intent takes (Stripe's answer over the network).
STRIPE_READ = 0.5


class WorkflowWorker:
    """The child-process worker: start, SIGKILL, start again."""

    def __init__(self, address: str, namespace: str, task_queue: str) -> None:
        self._args = [address, namespace, task_queue]
        self._process: asyncio.subprocess.Process | None = None
        self.kills = 0

    async def start(self, timeout: float = 30.0) -> None:
        """Start the child and return once it polls."""
        assert self._process is None, "worker already running"
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.crash_support",
            *self._args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if line.decode().strip() != READY:
            await self.kill()
            raise RuntimeError(f"crash worker did not start (said {line!r})")

    async def kill(self) -> None:
        """SIGKILL: no graceful shutdown, the sticky queue is left behind."""
        if self._process is None:
            return
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            self.kills += 1
        await self._process.wait()
        self._process = None


class LaggingFakes(FakeActivities):
    """The fakes with the latencies of the real stack: SMTP slower than a ledger insert, the
    read-model upsert (or the batch holding it) slowest. A new deal then ends its start in two
    workflow tasks without commands (the welcome mail done, then the ledger write), the shape of
    the broken chaos deals: the last one is folded into the next task's activation when a fresh
    worker takes the deal, but not on replay."""

    @activity.defn(name="write_ledger")
    async def write_ledger(self, batch: LedgerBatch) -> LedgerWriteResult:
        await asyncio.sleep(0.6 if batch.snapshot else 0.05)
        return await super().write_ledger(batch)

    @activity.defn(name="send_email")
    async def send_email(self, input: EmailInput) -> EmailResult:
        await asyncio.sleep(0.3)
        return await super().send_email(input)

    @activity.defn(name="upsert_deal")
    async def upsert_deal(self, snapshot: DealSnapshot) -> None:
        await asyncio.sleep(0.6)
        await super().upsert_deal(snapshot)

    @activity.defn(name="record_event")
    async def record_event(self, event: LedgerEvent) -> bool:
        await asyncio.sleep(0.05)
        return await super().record_event(event)

    @activity.defn(name="retrieve_payment_intent")
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentState:
        await asyncio.sleep(STRIPE_READ)
        return await super().retrieve_payment_intent(payment_intent_id)

    @activity.defn(name="record_payment")
    async def record_payment(self, payment: PaymentRecord) -> bool:
        await asyncio.sleep(0.2)
        return await super().record_payment(payment)


async def wait_for_history(
    handle: WorkflowHandle,
    what: str,
    check: Callable[[list[HistoryEvent]], bool],
    timeout: float = 20.0,
) -> list[HistoryEvent]:
    """Poll the history until `check` holds: kill points follow events, not sleeps. A deal whose
    workflow task failed (it no longer replays) fails the wait at once: it would never get there."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = list((await handle.fetch_history()).events)
        if check(events):
            return events
        stuck = [
            e.workflow_task_failed_event_attributes.failure.message
            for e in events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            and e.workflow_task_failed_event_attributes.cause in STUCK
        ]
        if stuck:
            raise AssertionError(f"{handle.id} is stuck waiting for {what}: {stuck[-1]}")
        if asyncio.get_running_loop().time() > deadline:
            names = [EventType.Name(e.event_type) for e in events[-8:]]
            raise AssertionError(f"{handle.id}: timed out waiting for {what}; last {names}")
        await asyncio.sleep(0.02)


def count(events: list[HistoryEvent], event_type: EventType.ValueType) -> int:
    return sum(e.event_type == event_type for e in events)


def settled(events: list[HistoryEvent]) -> bool:
    """The last workflow task completed and no activity is open: the deal waits for people."""
    if not events or events[-1].event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        return False
    open_activities: set[int] = set()
    for e in events:
        match e.event_type:
            case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                open_activities.add(e.event_id)
            case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                open_activities.discard(
                    e.activity_task_completed_event_attributes.scheduled_event_id
                )
            case EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                open_activities.discard(e.activity_task_failed_event_attributes.scheduled_event_id)
    return not open_activities


async def _serve(address: str, namespace: str, task_queue: str) -> None:
    client = await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )
    worker = apply_activation_jobs_as_one_batch(
        Worker(
            client,
            task_queue=task_queue,
            workflows=[DealWorkflow],
            workflow_runner=sandboxed_runner(client.data_converter),
            workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=POLLERS),
            sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        )
    )
    async with worker:
        print(READY, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(*sys.argv[1:4]))
