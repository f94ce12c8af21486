"""Deals survive a worker SIGKILLed at the worst moments, and every history they leave replays.

Four one-milestone deals run on the real dev server, on a workflow worker in a child process
(`tests.crash_support`) that is SIGKILLed five times, each time at a point read off a deal's
history: the deals' start settled and the client's `sign_sow` updates sent while no worker runs;
right after a timer fired; with a payment's read of Stripe in flight, started by the task its
webhook woke, so its result comes while no worker runs; in a burst of duplicated and
reordered `stripe_event` signals, with status queries polled meanwhile; and the deliveries
settled and every `approve_milestone` update sent while no worker runs. Each time the test waits
until a task on the dead worker's sticky queue has timed out (1 s), so a fresh worker rebuilds
the deals from their whole history: how 17 deals of the chaos runs broke (see
tests/histories/nondeterministic/). Every deal must complete, and every history must replay.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from dealflow.messages import (
    ApproveMilestone,
    DealStage,
    MilestoneState,
    SignSow,
    SubmitDeliverable,
)
from tests.crash_support import (
    LaggingFakes,
    WorkflowWorker,
    count,
    settled,
    wait_for_history,
)
from tests.deal_harness import DealRun, make_spec
from workflows.deal import DealWorkflow

#: Shorter than the 10 s default, so a task the killed worker had started is retried soon.
TASK_TIMEOUT = timedelta(seconds=2)
SIGNATURE = SignSow(signer_name="Ada Client", consent=True, ip="203.0.113.9", user_agent="crash")
APPROVAL = ApproveMilestone(milestone_key="m1", approved_by="Ada")
TIMED_OUT = EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
COMPLETED_TASK = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
FIRED = EventType.EVENT_TYPE_TIMER_FIRED
SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED

Check = Callable[[list[HistoryEvent]], bool]


class Crashes:
    """Deals on one task queue whose workflow worker the test kills and restarts."""

    def __init__(self, env: WorkflowEnvironment, fake: LaggingFakes) -> None:
        self.env = env
        self.fake = fake
        self.task_queue = f"crash-{uuid.uuid4().hex[:8]}"
        client = env.client
        self.worker = WorkflowWorker(
            client.service_client.config.target_host, client.namespace, self.task_queue
        )
        self.deals: list[DealRun] = []
        self.pending: list[asyncio.Future[object]] = []

    async def start(self, **policy: object) -> DealRun:
        spec = make_spec(milestones=1, **policy)
        handle = await self.env.client.start_workflow(
            DealWorkflow.run,
            spec,
            id=spec.workflow_id,
            task_queue=self.task_queue,
            memo={"title": spec.title},
            task_timeout=TASK_TIMEOUT,
        )
        deal = DealRun(self.env, spec, self.fake, handle)
        self.deals.append(deal)
        return deal

    def send(self, action: Awaitable[object]) -> None:
        """An update sent while the worker is down: it completes only after the restart."""
        self.pending.append(asyncio.ensure_future(action))

    async def outage(
        self,
        trigger: WorkflowHandle,
        what: str,
        check: Check,
        during: Callable[[], Awaitable[None] | None] = lambda: None,
    ) -> None:
        """SIGKILL the worker once `trigger`'s history passes `check`, do `during` while it is
        down, start a new worker (as a supervisor would), and go on once a task of `trigger` on
        the dead worker's sticky queue timed out and what was sent meanwhile is done."""
        events = await wait_for_history(trigger, what, check)
        await self.worker.kill()
        # The portal keeps asking every deal's status: a fresh worker answers such a query from
        # the whole history before the task waiting on the dead worker's queue reaches it.
        self.send(_ask_until_answered(self.deals))
        done = during()
        if done is not None:
            await done
        await self.worker.start()
        # Either the task on the dead worker's sticky queue times out, or a status query sent
        # meanwhile moved the deal off that queue first: both hand it to the fresh worker whole.
        seen, timeouts = len(events), count(events, TIMED_OUT)
        await wait_for_history(
            trigger,
            f"the fresh worker's first task after {what}",
            lambda e: count(e, TIMED_OUT) > timeouts or count(e[seen:], COMPLETED_TASK) > 0,
        )
        pending, self.pending = self.pending, []
        await asyncio.gather(*pending)


def reads(events: list[HistoryEvent]) -> int:
    """Reads of a payment intent the deal has started."""
    return sum(
        e.activity_task_scheduled_event_attributes.activity_type.name == "retrieve_payment_intent"
        for e in events
    )


async def _ask_until_answered(deals: list[DealRun]) -> None:
    """The portal polls every deal's status: the fresh worker answers a query before it takes
    the deal's pending task, so it holds the deal in its cache when that task comes."""
    waiting = list(deals)
    while waiting:
        for deal in list(waiting):
            with suppress(TimeoutError, RPCError):
                await asyncio.wait_for(deal.status(), 0.5)
                waiting.remove(deal)
        await asyncio.sleep(0.05)


async def test_deals_survive_worker_kills(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    crashes = Crashes(dev_server_env, LaggingFakes())
    await _play_with_kills(crashes, tmp_path)


async def _play_with_kills(crashes: Crashes, tmp_path: Path) -> None:
    async with Worker(
        crashes.env.client, task_queue=crashes.task_queue, activities=crashes.fake.activities()
    ):
        await crashes.worker.start()
        try:
            await _play(crashes)
        except Exception as error:
            # A deal stuck on a history that no longer replays: say which histories broke.
            for failure in await _replay_failures(crashes.deals, tmp_path):
                error.add_note(failure)
            raise
        finally:
            for action in crashes.pending:
                action.cancel()
            await crashes.worker.kill()
    failures = await _replay_failures(crashes.deals, tmp_path)
    assert not failures, "\n".join(failures)


async def _play(crashes: Crashes) -> None:
    """The five kills, then every deal played to its end."""
    a, b, d = [await crashes.start() for _ in range(3)]
    c = await crashes.start(reminder_interval=timedelta(seconds=2))

    # 1. The start of a, b and d settled (two tasks without commands at the end); the client signs.
    for deal in (a, b, d):
        await wait_for_history(deal.handle, "its start", settled)

    def sign_all() -> None:
        for deal in (a, b, d):
            crashes.send(deal.update("sign_sow", SIGNATURE))

    await crashes.outage(a.handle, "the start settled", settled, sign_all)

    # 2. Right after c's sign reminder fired; the client signs before a worker is back.
    fired = count(list((await c.handle.fetch_history()).events), FIRED)
    await crashes.outage(
        c.handle,
        "a sign reminder fired",
        lambda e: count(e, FIRED) > fired,
        lambda: crashes.send(c.update("sign_sow", SIGNATURE)),
    )

    # 3. a's payment webhook came in and the task it woke started the Stripe read (0.5 s): the
    # read's result comes while no worker runs.
    session = await a.session_of("m1")
    read_before = reads(list((await a.handle.fetch_history()).events))
    await a.session_completed("m1", session, crashes.fake.pay(session))
    await crashes.outage(a.handle, "a Stripe read in flight", lambda e: reads(e) > read_before)

    # 4. b's webhook arrived; duplicates and a reordered event follow while no worker runs.
    session = await b.session_of("m1")
    intent = crashes.fake.pay(session)
    signals = count(list((await b.handle.fetch_history()).events), SIGNALED)
    event_id = await b.session_completed("m1", session, intent)

    async def burst() -> None:
        await b.session_completed("m1", session, intent, event_id=event_id)
        await b.stripe_event(
            "payment_intent.succeeded",
            object_id=intent.payment_intent_id,
            milestone_key="m1",
            payment_intent_id=intent.payment_intent_id,
            amount=intent.amount,
            currency=intent.currency,
        )
        await b.session_completed("m1", session, intent, event_id=event_id)
        for deal in crashes.deals:  # the portal keeps asking; nobody answers until the restart
            with suppress(TimeoutError, RPCError):
                await asyncio.wait_for(deal.status(), 0.2)

    await crashes.outage(
        b.handle, "a stripe_event signal", lambda e: count(e, SIGNALED) > signals, burst
    )

    # 5. Every deal delivered and settled; the client approves each, and webhooks come again, while no worker runs.
    for deal in (c, d):
        await deal.pay("m1")
    for deal in crashes.deals:
        await deal.milestone_state("m1", MilestoneState.IN_PROGRESS)
        await deal.update(
            "submit_deliverable", SubmitDeliverable(milestone_key="m1", summary="done")
        )
    for deal in crashes.deals:
        await wait_for_history(deal.handle, "the delivery settled", settled)

    async def approve_all_among_late_webhooks() -> None:
        """As in chaos run 7's deal 22: the approval goes out, then Stripe redelivers the
        payment's webhooks under new event ids, all before a worker is back."""
        for deal in crashes.deals:
            crashes.send(deal.update("approve_milestone", APPROVAL))
        for deal in crashes.deals:
            session = await deal.session_of("m1")
            intent = crashes.fake.intents[crashes.fake.sessions[session].payment_intent_id or ""]
            await deal.session_completed("m1", session, intent)
            await deal.session_completed("m1", session, intent)

    await crashes.outage(
        a.handle, "the deliveries settled", settled, approve_all_among_late_webhooks
    )

    for deal in crashes.deals:
        end = await asyncio.wait_for(deal.result(), 30)
        assert end.stage is DealStage.COMPLETED, f"{deal.handle.id} ended {end.stage}"


async def _replay_failures(deals: list[DealRun], folder: Path) -> list[str]:
    """Each deal whose history does not replay, with where the history was saved."""
    replayer = Replayer(workflows=[DealWorkflow], data_converter=pydantic_data_converter)
    failures = []
    for deal in deals:
        history = await deal.handle.fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            path = folder / f"{deal.handle.id}.json"
            path.write_text(history.to_json())
            failures.append(f"{deal.handle.id} does not replay ({path}): {result.replay_failure}")
    return failures
