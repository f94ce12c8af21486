"""A long deal continues as new when Temporal suggests it, and nothing of it is lost or done twice.

The time-skipping test server never suggests continue-as-new, so this runs on a dev server of
its own whose suggestion comes after `SUGGEST_AFTER` events (`limit.historyCount.suggestContinueAsNew`,
4,096 by default). Its 10-milestone deal has each payment link but the last expire unpaid within
a second (Stripe's session says when it expires; the workflow replaces it then), so links are
replaced 20 times and the deal continues as new at its seams, in its funding waits too.
A deal whose dispute evidence Stripe keeps refusing goes on past its seams meanwhile, and
continues as new once the evidence is in.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from bridge.deals import Deals
from dealflow.contract import DEAL_COLLECTED_CENTS, DEAL_STAGE
from dealflow.messages import (
    CancelDeal,
    CheckoutSession,
    CreateCheckoutInput,
    DealStage,
    DisputeState,
    EmailKind,
    MilestoneState,
    SubmitEvidenceInput,
)
from dealflow.models import DealSpec
from tests.deal_harness import DealRun, make_spec, running_deal
from tests.dev_server import start_dev_server
from tests.fakes import FakeActivities
from workflows.deal import DealWorkflow
from workflows.deal.continuation import GIVE_UP_WAITING, DealCarry

SUGGEST_AFTER = 70
MILESTONES = 10
#: Each milestone's links: all but the last expire unpaid.
LINKS = 3


async def server_suggesting_after(
    events: int, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server(
        tmp_path_factory.mktemp("temporal"),
        ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={events}"],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def suggesting_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WorkflowEnvironment]:
    async for env in server_suggesting_after(SUGGEST_AFTER, tmp_path_factory):
        yield env


@pytest.fixture
async def eager_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WorkflowEnvironment]:
    """Suggests continuing after 20 events: every seam from the dispute to the second milestone's
    link is asked, however the deal's tasks happen to be split."""
    async for env in server_suggesting_after(20, tmp_path_factory):
        yield env


class ExpiringLinks(FakeActivities):
    """Stripe, where each milestone's links but the last expire unpaid half a second after."""

    @activity.defn(name="create_checkout_session")
    async def create_checkout_session(self, input: CreateCheckoutInput) -> CheckoutSession:
        session = await super().create_checkout_session(input)
        if input.generation == LINKS:
            return session
        soon = datetime.now(UTC) + timedelta(seconds=0.5)
        return session.model_copy(update={"expires_at": soon})


def long_deal() -> DealSpec:
    """10 milestones of odd amounts, a platform fee to round, windows no test reaches."""
    spec = make_spec(
        milestones=MILESTONES,
        vendor={"stripe_account": "acct_vendor1"},
        platform_fee_bps=250,
        platform_fee_fixed=30,
        reminder_interval="30d",
        fund_window="60d",
    )
    data = spec.model_dump(mode="json")
    for n, milestone in enumerate(data["milestones"], 1):
        milestone["amount"] = 123_457 * n + 1
    return DealSpec.model_validate(data)


def fee_of(amount: int) -> int:
    """2.5 % rounded half up to the cent, plus 0.30."""
    return (amount * 250 + 5_000) // 10_000 + 30


async def runs_of(deal: DealRun) -> list[WorkflowHistory]:
    """Every run's history, the first first, following each continue-as-new."""
    histories = []
    run_id: str | None = deal.handle.first_execution_run_id
    while run_id:
        handle = deal.env.client.get_workflow_handle(deal.handle.id, run_id=run_id)
        history = await handle.fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return histories


def input_of(history: WorkflowHistory) -> DealSpec | DealCarry:
    started = history.events[0].workflow_execution_started_event_attributes
    [start] = pydantic_data_converter.payload_converter.from_payloads(
        list(started.input.payloads), [DealSpec | DealCarry]
    )
    return start


async def test_a_long_deal_continues_as_new_and_completes_to_the_cent(
    suggesting_server: WorkflowEnvironment,
) -> None:
    spec = long_deal()
    keys = [m.key for m in spec.milestones]
    async with running_deal(suggesting_server, spec, ExpiringLinks()) as deal:
        await deal.sign()
        payments = []
        for n, key in enumerate(keys, 1):
            session_id = await deal.session_of(key, LINKS)
            intent = deal.fake.pay(session_id)
            event_id = await deal.session_completed(key, session_id, intent)
            payments.append((session_id, intent, event_id))
            await deal.milestone_state(key, MilestoneState.IN_PROGRESS)
            await deal.deliver(key)
            await deal.approve(key)
            if n == MILESTONES // 2:  # by now the deal has continued as new: Stripe redelivers
                await deal.session_completed(keys[0], *payments[0])
                await deal.wait_for(
                    "the redelivery ignored",
                    lambda s: any(e.kind == "duplicate_event" for e in s.timeline),
                )
        final = await deal.result()
        histories = await runs_of(deal)
        description = await deal.handle.describe()

    starts = [input_of(history) for history in histories]
    carried = [start for start in starts if isinstance(start, DealCarry)]
    assert isinstance(starts[0], DealSpec) and len(carried) == len(starts) - 1 >= 2
    assert [c.run for c in carried] == list(range(2, len(starts) + 1))
    assert any(c.funding for c in carried), "a run took up a funding wait with its open link"
    assert all(len(h.events) < SUGGEST_AFTER * 3 for h in histories)

    total = sum(m.amount for m in spec.milestones)
    fees = [fee_of(m.amount) for m in spec.milestones]
    assert final.stage is DealStage.COMPLETED
    assert [(m.state, m.released, m.platform_fee) for m in final.milestones] == [
        (MilestoneState.RELEASED, m.amount, fee) for m, fee in zip(spec.milestones, fees)
    ]
    assert (final.money.released, final.money.platform_fees) == (total, sum(fees))
    assert (final.money.funded, final.money.refunded, final.money.withdrawn) == (0, 0, 0)
    fake = deal.fake
    transfers = fake.args("transfer_to_vendor")
    assert [(t.milestone_key, t.amount) for t in transfers] == [
        (m.key, m.amount - fee) for m, fee in zip(spec.milestones, fees)
    ]

    # Nothing done twice: one SOW, each link made and mailed once, the redelivery ignored.
    assert len(fake.mails(EmailKind.SOW_SENT)) == 1
    made = [(c.milestone_key, c.generation) for c in fake.args("create_checkout_session")]
    assert made == [(key, g) for key in keys for g in range(1, LINKS + 1)]
    links = [mail.message_key for mail in fake.mails(EmailKind.PAYMENT_LINK)]
    assert sorted(links) == sorted(f"payment_link:{k}:{g}" for k in keys for g in range(1, LINKS + 1))
    assert len(fake.args("expire_checkout_session")) == MILESTONES * (LINKS - 1)

    # The whole timeline, from the first run's SOW to the last run's completion, numbered on.
    kinds = Counter(entry.kind for entry in final.timeline)
    assert (kinds["sow_sent"], kinds["signed"], kinds["completed"]) == (1, 1, 1)
    assert (kinds["payment_link"], kinds["funded"], kinds["released"]) == (
        MILESTONES * LINKS, MILESTONES, MILESTONES,
    )  # fmt: skip
    assert kinds["duplicate_event"] == 1 and not final.anomalies
    times = [entry.at for entry in final.timeline]
    assert times == sorted(times)
    assert len(fake.ledger_events) == len(final.timeline), "each entry one ledger row, none twice"

    # Search attributes and memo went along; the bridge finds the spec in the last run's carry.
    assert description.typed_search_attributes.get(DEAL_STAGE) == "completed"
    assert description.typed_search_attributes.get(DEAL_COLLECTED_CENTS) == total
    assert await description.memo_value("title") == spec.title
    assert await Deals(suggesting_server.client).spec(spec.deal_id) == spec

    replayer = Replayer(workflows=[DealWorkflow], data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)


class EvidenceRefused(FakeActivities):
    """Stripe, refusing (retryably, as when it is down) every submission of a dispute's evidence
    until `accepting`."""

    accepting = False
    refusals = 0

    @activity.defn(name="submit_dispute_evidence")
    async def submit_dispute_evidence(self, input: SubmitEvidenceInput) -> DisputeState:
        if not self.accepting:
            self.refusals += 1
            raise ApplicationError("Stripe is unavailable (test)", type="APIConnectionError")
        return await super().submit_dispute_evidence(input)


def scheduled(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def seam_waits(history: WorkflowHistory) -> set[str]:
    """The timers of the seams that waited for the work beside the deal."""
    return {
        e.timer_started_event_attributes.timer_id
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_TIMER_STARTED
        and e.user_metadata.summary.data == f'"{GIVE_UP_WAITING}"'.encode()
    }


def timers_fired(history: WorkflowHistory) -> set[str]:
    return {
        e.timer_fired_event_attributes.timer_id
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_TIMER_FIRED
    }


def timers_cancelled(history: WorkflowHistory) -> set[str]:
    return {
        e.timer_canceled_event_attributes.timer_id
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_TIMER_CANCELED
    }


def seams_waiting(history: WorkflowHistory) -> int:
    """How many seams wait for the work beside the deal now."""
    return len(seam_waits(history) - timers_fired(history) - timers_cancelled(history))


def seams_given_up(history: WorkflowHistory) -> int:
    """How many seams waited for the work beside the deal until their timer fired."""
    return len(seam_waits(history) & timers_fired(history))


async def disputed_with_evidence_refused(deal: DealRun) -> tuple[str, datetime]:
    """Sign, fund and deliver m1, whose payment the client's bank then disputes; Stripe refuses
    the evidence until the test says. The payment intent and the evidence's due date."""
    await deal.sign()
    intent = await deal.fund("m1")
    await deal.deliver("m1")
    intent_id, due_by = intent.payment_intent_id, datetime.now(UTC) + timedelta(days=7)
    deal.fake.chargeback(intent_id, "dp_1", due_by=due_by)
    await deal.stripe_event("charge.dispute.created", object_id="dp_1", payment_intent_id=intent_id)
    await deal.milestone_state("m1", MilestoneState.DISPUTED)
    return intent_id, due_by


async def test_evidence_stripe_keeps_refusing_holds_no_seam(
    eager_server: WorkflowEnvironment,
) -> None:
    """Submitting a dispute's evidence is retried until its due date, days off: a seam waits
    `continue_as_new_wait` for it once, and the deal is released, paid and continues meanwhile."""
    spec = make_spec(milestones=2, continue_as_new_wait=timedelta(seconds=1))
    fake = EvidenceRefused()
    async with running_deal(eager_server, spec, fake) as deal:
        intent_id, due_by = await disputed_with_evidence_refused(deal)
        fake.chargeback(intent_id, "dp_1", status="won", due_by=due_by)
        await deal.stripe_event("charge.dispute.closed", object_id="dp_1", payment_intent_id=intent_id)
        await deal.milestone_state("m1", MilestoneState.DELIVERED)
        await deal.approve("m1")
        await deal.session_of("m2")
        stuck = await runs_of(deal)
        refused_meanwhile = fake.refusals

        fake.accepting = True
        await deal.wait_for(
            "the evidence",
            lambda s: any(e.kind == "dispute_evidence_submitted" for e in s.timeline),
            timeout=30,
        )
        await deal.fund("m2")
        await deal.deliver("m2")
        await deal.approve("m2")
        final = await deal.result()
        histories = await runs_of(deal)

    assert refused_meanwhile >= 2, "the evidence was still being refused"
    assert sum(map(seams_given_up, stuck)) == 1, "one seam waited for it, the later ones did not"
    [holding] = [h for h in histories if "submit_dispute_evidence" in scheduled(h)]
    last = holding.events[-1].event_type
    assert last is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, "continued once it was in"
    assert final.stage is DealStage.COMPLETED
    assert [m.state for m in final.milestones] == [MilestoneState.RELEASED] * 2
    assert final.money.released == sum(m.amount for m in spec.milestones)
    replayer = Replayer(workflows=[DealWorkflow], data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)


async def test_a_cancellation_ends_a_seams_wait_at_once(eager_server: WorkflowEnvironment) -> None:
    """A seam waiting (an hour here) for the refused evidence stops waiting when the deal is
    cancelled: the wind-down answers the cancellation, and the deal ends once the evidence is in."""
    spec = make_spec(milestones=2, continue_as_new_wait=timedelta(hours=1))
    fake = EvidenceRefused()
    async with running_deal(eager_server, spec, fake) as deal:
        await disputed_with_evidence_refused(deal)
        for _ in range(200):
            if sum(map(seams_waiting, await runs_of(deal))):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no seam waited for the refused evidence")
        cancelled = await asyncio.wait_for(
            deal.update("cancel_deal", CancelDeal(reason="the client walked away")), 15
        )
        fake.accepting = True
        final = await deal.result()

    assert cancelled.stage is final.stage is DealStage.CANCELLED
    assert any(e.kind == "dispute_evidence_submitted" for e in final.timeline)
