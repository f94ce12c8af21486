"""`dealflow repair` on the real dev server, on deals whose history today's DealWorkflow cannot
replay: recorded by an earlier build, registered under the same name, that gave one command
more at one point. Every deal is played with FakeActivities under the real activity names."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from tests.cli_support import cli_environment, run_dealflow

with workflow.unsafe.imports_passed_through():
    # The sandbox re-imports this module for EarlierDealWorkflow: share the models with it.
    from dealflow.messages import (
        ApproveMilestone,
        DealStage,
        DealStatus,
        EmailKind,
        MilestoneState,
        PaymentIntentState,
        SubmitDeliverable,
    )
    from dealflow.models import DealSpec
    from dealflow.workflow_runner import SHARED_IMPORTS, sandboxed_runner
    from tests.deal_harness import DealRun, make_spec
    from tests.fakes import FakeActivities
    from workflows.deal import DealWorkflow
    from workflows.milestone import MilestoneRun


@workflow.defn(name="DealWorkflow")
class MemoBeforeWork(DealWorkflow):
    """An earlier build: a memo once a milestone is funded, before its work phase's timer (an
    extra timer would not do: replay matches timers by sequence, not by duration)."""

    @workflow.init
    def __init__(self, spec: DealSpec) -> None:
        super().__init__(spec)
        work_phase = self._phases[MilestoneState.IN_PROGRESS]

        async def memo_then_work(m: MilestoneRun) -> None:
            workflow.upsert_memo({"work_started": m.key})
            await work_phase(m)

        self._phases[MilestoneState.IN_PROGRESS] = memo_then_work

    @workflow.run
    async def run(self, spec: DealSpec) -> DealStatus:
        return await super().run(spec)


@workflow.defn(name="DealWorkflow")
class TimerAfterSignature(DealWorkflow):
    """An earlier build: a short timer once the SOW is signed, so the commands after the
    client's `sign_sow` update differ, as in the worker-kill histories."""

    @workflow.init
    def __init__(self, spec: DealSpec) -> None:
        super().__init__(spec)
        await_signature = self._signing.await_signature

        async def signature_then_a_timer() -> None:
            await await_signature()
            await workflow.sleep(timedelta(milliseconds=1))

        self._signing.await_signature = signature_then_a_timer  # type: ignore[method-assign]

    @workflow.run
    async def run(self, spec: DealSpec) -> DealStatus:
        return await super().run(spec)


@asynccontextmanager
async def worker(
    env: WorkflowEnvironment, task_queue: str, fake: FakeActivities, workflow_class: type
) -> AsyncIterator[None]:
    # No sticky cache: the next worker gets the deal's next task at once, as after a crash.
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[workflow_class],
        activities=fake.activities(),
        max_cached_workflows=0,
        workflow_runner=sandboxed_runner(env.client.data_converter, SHARED_IMPORTS),
    ):
        yield


async def start(env: WorkflowEnvironment, spec: DealSpec, fake: FakeActivities) -> DealRun:
    handle = await env.client.start_workflow(
        DealWorkflow.run, spec, id=spec.workflow_id, task_queue=queue_of(spec)
    )
    return DealRun(env, spec, fake, handle)


def queue_of(spec: DealSpec) -> str:
    return f"deals-{spec.deal_id}"


def latest_run(run: DealRun) -> DealRun:
    """The deal as its newest run (a reset starts a new one)."""
    handle = run.env.client.get_workflow_handle(run.spec.workflow_id, result_type=DealStatus)
    return DealRun(run.env, run.spec, run.fake, handle)


async def dealflow(
    env: WorkflowEnvironment, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    environment = cli_environment(
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host, DEALFLOW_HOME=str(home)
    )
    return await run_dealflow(environment, *args, timeout=120)


async def wait_memo(handle: WorkflowHandle, key: str, timeout: float = 10.0) -> None:
    """Until the earlier build has recorded its extra command."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await (await handle.describe()).memo_value(key, None) is None:
        assert asyncio.get_running_loop().time() < deadline, f"no memo {key}"
        await asyncio.sleep(0.1)


async def wait_nondeterministic(handle: WorkflowHandle, timeout: float = 30.0) -> None:
    """Until today's worker has failed the deal's workflow task with nondeterminism."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and event.workflow_task_failed_event_attributes.cause
        == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
        for event in (await handle.fetch_history()).events
    ):
        assert asyncio.get_running_loop().time() < deadline, "no nondeterministic task failure"
        await asyncio.sleep(0.2)


async def replays(handle: WorkflowHandle) -> None:
    replayer = Replayer(workflows=[DealWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


async def sign_and_fund_on_the_earlier_build(run: DealRun) -> PaymentIntentState:
    """The client signs and pays while MemoBeforeWork runs the deal, up to its extra memo."""
    await run.wait_calls("the SOW mail", lambda f: bool(f.mails()))
    await run.sign()
    intent = await run.fund("m1")
    await wait_memo(run.handle, "work_started")
    return intent


async def test_repair_moves_a_stuck_deal_to_its_end(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    spec, fake = make_spec(milestones=1), FakeActivities()
    async with worker(dev_server_env, queue_of(spec), fake, MemoBeforeWork):
        run = await start(dev_server_env, spec, fake)
        intent = await sign_and_fund_on_the_earlier_build(run)
    # While no worker can run the deal, Stripe resends the payment and the vendor delivers.
    await run.stripe_event(
        "payment_intent.succeeded",
        object_id=intent.payment_intent_id,
        payment_intent_id=intent.payment_intent_id,
        milestone_key="m1",
    )
    await run.handle.signal(
        "submit_deliverable", SubmitDeliverable(milestone_key="m1", summary="done")
    )

    async with worker(dev_server_env, queue_of(spec), fake, DealWorkflow):
        await wait_nondeterministic(run.handle)

        dry = await dealflow(dev_server_env, tmp_path, "repair", spec.deal_id, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "does not replay: history event" in dry.stdout
        assert "to reapply: signal stripe_event, signal submit_deliverable" in dry.stdout
        assert "--dry-run: nothing changed" in dry.stdout
        assert (await run.handle.describe()).run_id == run.handle.result_run_id

        repaired = await dealflow(dev_server_env, tmp_path, "repair", spec.deal_id, "--yes")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        new = latest_run(run)
        new_run_id = (await new.handle.describe()).run_id
        assert new_run_id != run.handle.result_run_id
        assert f"new run {new_run_id}" in repaired.stdout
        assert f"/workflows/{spec.workflow_id}/{new_run_id}" in repaired.stdout
        assert "reapplied: nothing" in repaired.stdout
        assert "re-sent: signal stripe_event, signal submit_deliverable" in repaired.stdout
        assert "the new run replays" in repaired.stdout

        await new.milestone_state("m1", MilestoneState.DELIVERED, timeout=30)
        await new.approve("m1")
        assert (await new.result()).stage is DealStage.COMPLETED
        await replays(new.handle)
    assert len(fake.intents) == 1 and not fake.args("refund_payment")


async def test_repair_gives_a_completed_deal_a_run_that_replays(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    spec, fake = make_spec(milestones=1), FakeActivities()
    async with worker(dev_server_env, queue_of(spec), fake, MemoBeforeWork):
        run = await start(dev_server_env, spec, fake)
        await sign_and_fund_on_the_earlier_build(run)
        await run.handle.signal(
            "submit_deliverable", SubmitDeliverable(milestone_key="m1", summary="done")
        )
        await run.milestone_state("m1", MilestoneState.DELIVERED)
        await run.handle.signal(
            "approve_milestone", ApproveMilestone(milestone_key="m1", approved_by="Ada")
        )
        await run.result()

    async with worker(dev_server_env, queue_of(spec), fake, DealWorkflow):
        with pytest.raises(WorkflowQueryFailedError, match="Nondeterminism"):
            await run.status()
        repaired = await dealflow(dev_server_env, tmp_path, "repair", spec.deal_id, "--yes")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "re-sent: signal submit_deliverable, signal approve_milestone" in repaired.stdout
        assert "the new run replays" in repaired.stdout
        new = latest_run(run)
        assert (await new.result()).stage is DealStage.COMPLETED
        await replays(new.handle)
    # The release ran again: the receipt is keyed by deal and milestone (issued once), the
    # mails by their message keys (the same Message-IDs).
    first, again = fake.args("issue_receipt")
    assert (first.deal_id, first.milestone_key) == (again.deal_id, again.milestone_key)
    assert len(fake.receipts) == 1
    completed = [mail.message_key for mail in fake.mails(EmailKind.DEAL_COMPLETED)]
    assert len(completed) == 4 and len(set(completed)) == 2


async def test_repair_of_a_deal_stuck_after_the_signature(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Reapplied together by a reset, the signature (an update) and the payment webhook (a
    signal) would reach the workflow in one activation in another order than a replay gives them:
    repair reapplies the update and re-sends the signal after it, and the new run replays."""
    spec, fake = make_spec(milestones=1), FakeActivities()
    async with worker(dev_server_env, queue_of(spec), fake, TimerAfterSignature):
        run = await start(dev_server_env, spec, fake)
        await run.wait_calls("the SOW mail", lambda f: bool(f.mails()))
        await run.sign()
        session_id = await run.session_of("m1")
    intent = fake.pay(session_id)
    await run.session_completed("m1", session_id, intent)

    async with worker(dev_server_env, queue_of(spec), fake, DealWorkflow):
        await wait_nondeterministic(run.handle)
        repaired = await dealflow(dev_server_env, tmp_path, "repair", spec.deal_id, "--yes")
        assert "reapplied: update sign_sow" in repaired.stdout
        assert "re-sent: signal stripe_event" in repaired.stdout
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        new = latest_run(run)
        await new.milestone_state("m1", MilestoneState.IN_PROGRESS, timeout=30)
        await new.deliver("m1")
        await new.approve("m1")
        assert (await new.result()).stage is DealStage.COMPLETED
        await replays(new.handle)


async def test_repair_leaves_a_deal_that_replays_alone(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    spec, fake = make_spec(milestones=1), FakeActivities()
    async with worker(dev_server_env, queue_of(spec), fake, DealWorkflow):
        run = await start(dev_server_env, spec, fake)
        await run.sign()
        result = await dealflow(dev_server_env, tmp_path, "repair", spec.deal_id, "--yes")
        assert result.returncode == 0, result.stderr
        assert "replays with today's DealWorkflow: nothing to repair" in result.stdout
        description = await run.handle.describe()
        assert description.run_id == run.handle.result_run_id
        assert description.status is WorkflowExecutionStatus.RUNNING


async def test_repair_of_an_unknown_deal_exits_1(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    result = await dealflow(dev_server_env, tmp_path, "repair", "no-such-deal", "--yes")
    assert result.returncode == 1
    assert "no deal no-such-deal" in result.stderr
