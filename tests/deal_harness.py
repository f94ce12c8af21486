"""Driving one DealWorkflow on the time-skipping test server with recording fake activities.

`running_deal` starts a worker (real DealWorkflow, `FakeActivities`) on its own task queue and
the deal's workflow, and hands back a `DealRun` that acts like the deal's people: it signs,
pays (through the fake Stripe, then the webhook signal), delivers, approves. Waiting is by
polling with a deadline (the small `summary` query when only a milestone's state matters, the
`status` query otherwise); virtual time moves only through `advance`.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from dealflow.contract import SEARCH_ATTRIBUTES
from dealflow.messages import (
    ActionResult,
    ApproveMilestone,
    DealStatus,
    DealSummary,
    MilestoneState,
    PaymentIntentState,
    SignSow,
    StripeEventSignal,
    SubmitDeliverable,
)
from dealflow.models import DealSpec
from dealflow.temporal import apply_activation_jobs_as_one_batch
from dealflow.workflow_runner import sandboxed_runner
from starter import start_deal
from tests.fakes import FakeActivities
from workflows.deal import DealWorkflow
from workflows.deal.context import DealContext

SOW = "Design, build and launch the marketing site described in the attached brief."
_event_ids = itertools.count(1)
QUERY_TIMEOUT = timedelta(seconds=3)
QUERY_ATTEMPTS = 4
#: Real seconds a time skip may stand still before `DealRun.advance` looks for a lost lock.
STALLED_SKIP = 5.0
Q = TypeVar("Q")


def make_spec(
    *, milestones: int = 3, vendor: dict[str, Any] | None = None, **policy: Any
) -> DealSpec:
    """A valid deal with `milestones` milestones of 1,000.00, 2,000.00, ... USD."""
    return DealSpec.model_validate(
        {
            "deal_id": f"t-{uuid.uuid4().hex[:12]}",
            "title": "Marketing site",
            "currency": "usd",
            "client": {"name": "Ada Client", "email": "Ada@Client.example"},
            "vendor": {"name": "Vera Vendor", "email": "vera@vendor.example", **(vendor or {})},
            "sow": SOW,
            "milestones": [
                {
                    "key": f"m{n}",
                    "title": f"Milestone {n}",
                    "amount": n * 100_000,
                    "due_in_days": 10 * n,
                }
                for n in range(1, milestones + 1)
            ],
            "policy": policy,
        }
    )


async def register_search_attributes(env: WorkflowEnvironment) -> None:
    """The test server refuses undeclared search attributes; declaring twice is harmless."""
    with suppress(RPCError):
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES},
            )
        )


@pytest.fixture
async def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """The time-skipping server, with dealflow's search attributes declared."""
    await register_search_attributes(time_skipping_env)
    return time_skipping_env


def force_payment_read(monkeypatch: pytest.MonkeyPatch, *, in_task: bool) -> None:
    """Every deal built from now on reads its payments in the task (a local activity) or by an
    activity of their own, whatever its patches say."""
    built = DealContext.__init__

    def with_that_read(ctx: DealContext, spec: DealSpec) -> None:
        built(ctx, spec)
        ctx.payments_read_in_task = in_task

    monkeypatch.setattr(DealContext, "__init__", with_that_read)


@pytest.fixture
def reads_in_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deals built as the `payments-read-in-the-task` release built them, each payment read by a
    local activity in the task its hint woke: deals of that release still run, and read so until
    they continue as new."""
    force_payment_read(monkeypatch, in_task=True)


class DealRun:
    def __init__(
        self,
        env: WorkflowEnvironment,
        spec: DealSpec,
        fake: FakeActivities,
        handle: WorkflowHandle[DealWorkflow, DealStatus],
    ) -> None:
        self.env = env
        self.spec = spec
        self.fake = fake
        self.handle = handle

    # ------------------------------------------------------------------ observing

    async def status(self) -> DealStatus:
        return await self._query(DealWorkflow.status)

    async def summary(self) -> DealSummary:
        return await self._query(DealWorkflow.summary)

    async def _query(self, query: Callable[[DealWorkflow], Q]) -> Q:
        """Ask again when a query goes unanswered: the test server's continue-as-new is not
        atomic (temporalio/sdk-java#1537), and a query that lands while a deal continues is
        lost, where the next one is answered at once."""
        for _ in range(QUERY_ATTEMPTS - 1):
            try:
                return await self.handle.query(query, rpc_timeout=QUERY_TIMEOUT)
            except RPCError as error:
                if error.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
                    raise
        return await self.handle.query(query, rpc_timeout=QUERY_TIMEOUT)

    async def wait_for(
        self, what: str, check: Callable[[DealStatus], bool], timeout: float = 10.0
    ) -> DealStatus:
        """Poll the status query until `check` holds; fail with the last status after `timeout`."""

        async def ready() -> DealStatus | None:
            status = await self.status()
            return status if check(status) else None

        return await self._poll(what, ready, timeout)

    async def _poll(
        self, what: str, ready: Callable[[], Awaitable[DealStatus | None]], timeout: float
    ) -> DealStatus:
        deadline = asyncio.get_running_loop().time() + timeout
        while (status := await ready()) is None:
            if asyncio.get_running_loop().time() > deadline:
                status = await self.status()
                timeline = "\n".join(f"  {e.source}/{e.kind}: {e.message}" for e in status.timeline)
                raise AssertionError(
                    f"timed out waiting for {what}; stage {status.stage}\n{timeline}"
                )
            await asyncio.sleep(0.05)
        return status

    async def wait_calls(
        self, what: str, check: Callable[[FakeActivities], bool], timeout: float = 10.0
    ) -> None:
        """Poll the recorded activity calls until `check` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not check(self.fake):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; calls: {self.fake.names()}")
            await asyncio.sleep(0.05)

    async def milestone_state(
        self, key: str, state: MilestoneState, timeout: float = 10.0
    ) -> DealStatus:
        """Poll the small `summary` query until the milestone is in `state`; then the full
        status (asked for again if the deal moved on in between)."""

        def reached(deal: DealSummary | DealStatus) -> bool:
            return next(m for m in deal.milestones if m.key == key).state is state

        async def ready() -> DealStatus | None:
            if not reached(await self.summary()):
                return None
            status = await self.status()
            return status if reached(status) else None

        return await self._poll(f"{key} {state.value}", ready, timeout)

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def advance(self, duration: timedelta) -> None:
        """Move virtual time; the server fires due timers in order as it skips.

        The test server does not skip while a lock on skipping is held, and it takes one for each
        workflow task it hands out; its continue-as-new is not atomic
        (temporalio/sdk-java#1537), and a task of the run that continued can keep its lock for
        good (the worker's completion is refused: the run "already completed"). The skip then
        never ends. When virtual time only keeps up with real time while the deal has no task or
        activity out, that lock is given back here."""
        sleeping = asyncio.ensure_future(self.env.sleep(duration))
        while not sleeping.done():
            before = await self.now()
            await asyncio.wait({sleeping}, timeout=STALLED_SKIP)
            stood_still = await self.now() - before < timedelta(minutes=1)  # real time runs on
            if not sleeping.done() and stood_still and await self._idle():
                await self.env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        await sleeping

    async def _idle(self) -> bool:
        """The deal's latest run has no workflow task and no activity out."""
        latest = self.env.client.get_workflow_handle(self.handle.id)
        described = (await latest.describe()).raw_description
        return not described.HasField("pending_workflow_task") and not described.pending_activities

    # ------------------------------------------------------------------ acting

    async def update(self, name: str, arg: Any) -> ActionResult:
        return await self.handle.execute_update(name, arg, result_type=ActionResult)

    async def rejected(self, name: str, arg: Any) -> str:
        """The reason the update is refused (fails the test if it is accepted)."""
        try:
            result = await self.update(name, arg)
        except WorkflowUpdateFailedError as error:
            return str(error.cause.message if hasattr(error.cause, "message") else error.cause)
        raise AssertionError(f"{name} was accepted: {result}")

    async def sign(self) -> DealStatus:
        await self.update(
            "sign_sow",
            SignSow(signer_name="Ada Client", consent=True, ip="203.0.113.9", user_agent="pytest"),
        )
        return await self.milestone_state(
            self.spec.milestones[0].key, MilestoneState.AWAITING_FUNDING
        )

    async def session_of(self, key: str, generation: int = 1) -> str:
        await self.wait_calls(
            f"checkout session {generation} of {key}",
            lambda f: any(
                c.milestone_key == key and c.generation == generation
                for c in f.args("create_checkout_session")
            ),
        )
        return f"cs_test_{self.spec.deal_id}_{key}_{generation}"

    async def stripe_event(
        self, type: str, *, object_id: str, event_id: str | None = None, **fields: Any
    ) -> str:
        event_id = event_id or f"evt_{next(_event_ids)}"
        await self.handle.signal(
            DealWorkflow.stripe_event,
            StripeEventSignal(
                event_id=event_id,
                type=type,
                livemode=False,
                created=datetime.now(UTC),
                object_id=object_id,
                **fields,
            ),
        )
        return event_id

    async def session_completed(
        self, key: str, session_id: str, intent: PaymentIntentState, event_id: str | None = None
    ) -> str:
        return await self.stripe_event(
            "checkout.session.completed",
            object_id=session_id,
            event_id=event_id,
            milestone_key=key,
            checkout_session_id=session_id,
            payment_intent_id=intent.payment_intent_id,
            amount=intent.amount,
            currency=intent.currency,
        )

    async def pay(self, key: str, generation: int = 1, **payment: Any) -> PaymentIntentState:
        """The client pays the milestone's session and Stripe sends checkout.session.completed."""
        session_id = await self.session_of(key, generation)
        intent = self.fake.pay(session_id, **payment)
        await self.session_completed(key, session_id, intent)
        return intent

    async def fund(self, key: str) -> PaymentIntentState:
        intent = await self.pay(key)
        await self.milestone_state(key, MilestoneState.IN_PROGRESS)
        return intent

    async def deliver(self, key: str, **fields: Any) -> ActionResult:
        result = await self.update(
            "submit_deliverable",
            SubmitDeliverable(milestone_key=key, summary=f"{key} done", **fields),
        )
        await self.milestone_state(key, MilestoneState.DELIVERED)
        return result

    async def approve(self, key: str) -> DealStatus:
        await self.update(
            "approve_milestone", ApproveMilestone(milestone_key=key, approved_by="Ada")
        )
        return await self.milestone_state(key, MilestoneState.RELEASED)

    async def result(self) -> DealStatus:
        return await self.handle.result()

    async def complete(self) -> DealStatus:
        """Sign, then fund, deliver and approve each milestone in turn; the deal's result."""
        await self.sign()
        for milestone in self.spec.milestones:
            await self.fund(milestone.key)
            await self.deliver(milestone.key)
            await self.approve(milestone.key)
        return await self.result()

    async def replay(self) -> None:
        """Replay the deal's history against the workflow code: fails on any nondeterminism."""
        replayer = Replayer(workflows=[DealWorkflow], data_converter=pydantic_data_converter)
        await replayer.replay_workflow(await self.handle.fetch_history())


@asynccontextmanager
async def running_deal(
    env: WorkflowEnvironment, spec: DealSpec | None = None, fake: FakeActivities | None = None
) -> AsyncIterator[DealRun]:
    spec = spec or make_spec()
    fake = fake or FakeActivities()
    task_queue = f"deals-{spec.deal_id}"
    # A bug in the workflow fails the test at once instead of retrying the workflow task.
    worker = Worker(
        env.client,
        task_queue=task_queue,
        workflows=[DealWorkflow],
        activities=fake.activities(),
        workflow_runner=sandboxed_runner(env.client.data_converter),
        workflow_failure_exception_types=[Exception],
    )
    # As worker.py runs deals. A deal the test leaves running ends with the test's own server.
    async with apply_activation_jobs_as_one_batch(worker):
        handle = await start_deal(env.client, spec, task_queue)
        yield DealRun(env, spec, fake, handle)
