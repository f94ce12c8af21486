"""Stripe events are hints: duplicates and reordering fund once, wrong money funds nothing, a second
payment is given back; and permanent activity failures are recorded while the deal goes on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    ApproveMilestone,
    DealStage,
    EmailKind,
    MilestoneState,
    PaymentIntentState,
    PaymentKind,
    ResolveDispute,
)
from tests.deal_harness import make_spec, running_deal
from tests.fakes import Call, FakeActivities

S = MilestoneState


async def test_reordered_and_duplicate_events_fund_once(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        session_id = await deal.session_of("m1")
        intent = deal.fake.pay(session_id)
        pi = intent.payment_intent_id
        succeeded = await deal.stripe_event(
            "payment_intent.succeeded", object_id=pi, payment_intent_id=pi, milestone_key="m1"
        )
        completed = await deal.session_completed("m1", session_id, intent)
        await deal.stripe_event(
            "payment_intent.succeeded", object_id=pi, payment_intent_id=pi, event_id=succeeded
        )
        await deal.session_completed("m1", session_id, intent, event_id=completed)
        await deal.wait_for(
            "both duplicates seen",
            lambda s: len([e for e in s.timeline if e.kind == "duplicate_event"]) == 2,
        )
        status = await deal.milestone_state("m1", S.IN_PROGRESS)
        await deal.wait_calls("the charge row", lambda f: f.payments)

    assert status.milestones[0].state is S.IN_PROGRESS
    assert status.money.funded == 100_000
    assert len([e for e in status.timeline if e.kind == "funded"]) == 1
    assert [p.kind for p in deal.fake.payments.values()] == [PaymentKind.CHARGE]
    assert len(deal.fake.mails(EmailKind.PAYMENT_RECEIVED)) == 1
    assert len(deal.fake.mails(EmailKind.WORK_ORDER)) == 1
    assert deal.fake.args("retrieve_payment_intent").count(pi) == 1, "one read per payment"
    assert not deal.fake.args("retrieve_checkout_session"), "the hint named the intent"
    assert any(
        e.kind == "stripe_event_ignored" and "counted already" in e.message for e in status.timeline
    ), "the second event about the same payment cost no read"
    assert not deal.fake.args("expire_checkout_session"), "the paid session is complete"


@pytest.mark.parametrize(
    ("payment", "shown"),
    [({"amount": 99_999}, "USD 999.99"), ({"currency": "eur"}, "EUR 1,000.00")],
    ids=["amount", "currency"],
)
async def test_wrong_money_is_an_anomaly_and_funds_nothing(
    env: WorkflowEnvironment, payment: dict[str, object], shown: str
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        await deal.pay("m1", **payment)
        status = await deal.wait_for("the anomaly", lambda s: s.anomalies)

    assert status.milestones[0].state is S.AWAITING_FUNDING
    assert status.money.funded == 0 and status.milestones[0].payment_intent_id is None
    assert shown in status.anomalies[0] and "nothing funded" in status.anomalies[0]
    assert not deal.fake.payments
    assert not deal.fake.mails(EmailKind.PAYMENT_RECEIVED)


@pytest.mark.parametrize(
    ("capture", "giving_back"),
    [("on_funding", "refund_payment"), ("on_approval", "cancel_authorization")],
)
async def test_a_second_payment_for_a_funded_milestone_is_given_back(
    env: WorkflowEnvironment, capture: str, giving_back: str
) -> None:
    async with running_deal(env, make_spec(milestones=1, capture=capture)) as deal:
        await deal.sign()
        first = await deal.fund("m1")
        second = deal.fake.add_intent(
            "m1", deal_id=deal.spec.deal_id, amount=100_000, currency="usd", manual=capture == "on_approval"
        )
        await deal.stripe_event(
            "payment_intent.succeeded",
            object_id=second.payment_intent_id,
            payment_intent_id=second.payment_intent_id,
            milestone_key="m1",
        )
        status = await deal.wait_for(
            "the extra payment returned", lambda s: s.money.refunded == 100_000
        )

    milestone = status.milestones[0]
    assert milestone.payment_intent_id == first.payment_intent_id
    assert milestone.state is S.IN_PROGRESS
    assert status.money.funded == 100_000, "the milestone's own payment is still held"
    [call] = deal.fake.args(giving_back)
    assert call.payment_intent_id == second.payment_intent_id
    if giving_back == "refund_payment":
        assert (call.reason, call.purpose) == ("duplicate", f"duplicate:{second.payment_intent_id}")
    assert any(e.kind == "duplicate_payment" for e in status.timeline)


async def test_failed_payments_and_refund_events_are_recorded(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        session_id = await deal.session_of("m1")
        await deal.stripe_event(
            "payment_intent.payment_failed",
            object_id="pi_declined",
            payment_intent_id="pi_declined",
            milestone_key="m1",
        )
        status = await deal.wait_for(
            "the failure", lambda s: any(e.kind == "payment_failed" for e in s.timeline)
        )
        assert status.milestones[0].checkout_session_id == session_id, "the link stays open"

        intent = await deal.fund("m1")
        pi, charge = intent.payment_intent_id, intent.latest_charge
        assert charge
        deal.fake.refund_outside(pi, 25_000, "re_dashboard")
        await deal.stripe_event(
            "charge.refunded", object_id=charge, payment_intent_id=pi, amount=25_000
        )
        await deal.stripe_event(
            "refund.created", object_id="re_dashboard", payment_intent_id=pi, amount=25_000
        )
        await deal.stripe_event(
            "charge.refunded", object_id=charge, payment_intent_id=pi, amount=25_000
        )
        status = await deal.wait_for(
            "the outside refund", lambda s: any(e.kind == "refund_outside" for e in s.timeline)
        )

    assert status.milestones[0].refunded == 25_000, "counted once"
    assert status.money.funded == 75_000
    assert any("refunded outside dealflow" in a for a in status.anomalies)


async def test_a_failed_payment_link_is_retried_with_the_next_reminder(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1, reminder_interval="2d")) as deal:
        deal.fake.fail(
            "create_checkout_session", "StripeInvalidRequest", lambda i: i.generation == 1
        )
        await deal.sign()
        status = await deal.wait_for("the anomaly", lambda s: s.anomalies)
        assert "Creating the payment link failed: StripeInvalidRequest" in status.anomalies[0]
        assert (
            status.next_deadline
            and status.next_deadline.action == "try again to create the payment link"
        )
        await deal.advance(timedelta(days=2, minutes=1))
        await deal.pay("m1", generation=2)
        await deal.milestone_state("m1", S.IN_PROGRESS)
    assert [m.message_key for m in deal.fake.mails(EmailKind.PAYMENT_LINK)] == ["payment_link:m1:2"]


async def test_refused_mails_and_vendor_posts_are_recorded_and_the_deal_goes_on(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=1, vendor={"fulfillment_url": "https://vendor.example/orders"})
    async with running_deal(env, spec) as deal:
        deal.fake.fail(
            "send_email", "PermanentSmtpError", lambda mail: mail.kind is EmailKind.WORK_ORDER
        )
        deal.fake.fail("dispatch_work_order", "VendorRejected")
        await deal.sign()
        await deal.fund("m1")
        status = await deal.wait_for("two anomalies", lambda s: len(s.anomalies) == 2)
        await deal.deliver("m1")
        await deal.approve("m1")
        final = await deal.result()
    assert sorted(a.split(":")[0] for a in status.anomalies) == [
        "Sending the work order to the vendor failed",
        "The work_order mail to vera@vendor.example failed",
    ]
    assert final.stage is DealStage.COMPLETED


async def test_a_failed_payout_pauses_the_milestone_until_an_operator_resolves_it(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=1, vendor={"stripe_account": "acct_vendor1"})
    async with running_deal(env, spec) as deal:
        deal.fake.fail("transfer_to_vendor", "StripeInvalidRequest")
        await deal.sign()
        await deal.fund("m1")
        await deal.deliver("m1")
        await deal.update("approve_milestone", ApproveMilestone(milestone_key="m1"))
        status = await deal.milestone_state("m1", S.DISPUTED)
        assert status.milestones[0].dispute_reason.startswith("payout stopped")
        deal.fake.failures.clear()
        await deal.update(
            "resolve_dispute", ResolveDispute(milestone_key="m1", resolution="release")
        )
        final = await deal.result()
    assert final.stage is DealStage.COMPLETED
    assert len(deal.fake.args("transfer_to_vendor")) == 2
    assert final.milestones[0].transfer_id == "tr_m1"


@pytest.mark.parametrize(
    ("owner", "milestone_key", "anomaly"),
    [
        ("deal-of-someone-else", "m1", "belongs to deal 'deal-of-someone-else'"),
        (None, "m9", "names no milestone of this deal ('m9')"),
    ],
    ids=["another-deals-payment", "unknown-milestone"],
)
async def test_a_payment_funds_only_when_stripes_copy_names_this_deal_and_milestone(
    env: WorkflowEnvironment, owner: str | None, milestone_key: str, anomaly: str
) -> None:
    """A validly signed event may point at any payment: what Stripe says it carries decides."""
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        foreign = deal.fake.add_intent(
            milestone_key, deal_id=owner or deal.spec.deal_id, amount=100_000, currency="usd"
        )
        await deal.stripe_event(
            "payment_intent.succeeded",
            object_id=foreign.payment_intent_id,
            payment_intent_id=foreign.payment_intent_id,
            milestone_key="m1",  # the event claims this deal's milestone
        )
        status = await deal.wait_for("the anomaly", lambda s: bool(s.anomalies))

    assert anomaly in status.anomalies[0] and "nothing funded" in status.anomalies[0]
    assert status.milestones[0].state is S.AWAITING_FUNDING
    assert status.money.funded == 0 and not deal.fake.payments


async def test_refund_and_dispute_events_count_only_what_stripe_says(
    env: WorkflowEnvironment,
) -> None:
    """A validly signed event with a wrong amount or another payment changes no money: the
    workflow reads the charge, refund or dispute back from Stripe first."""
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        intent = await deal.fund("m1")
        pi, charge = intent.payment_intent_id, intent.latest_charge
        assert charge
        # The webhook claims 90,000 refunded; Stripe says 10,000.
        deal.fake.refund_outside(pi, 10_000, "re_small")
        await deal.stripe_event(
            "charge.refunded", object_id=charge, payment_intent_id=pi, amount=90_000
        )
        # A chargeback event naming this deal's payment, about another deal's charge.
        other = deal.fake.add_intent("m1", deal_id="someone-else", amount=5_000, currency="usd")
        deal.fake.chargeback(other.payment_intent_id, "dp_foreign")
        await deal.stripe_event(
            "charge.dispute.created", object_id="dp_foreign", payment_intent_id=pi, amount=100_000
        )
        # A dispute id Stripe does not know at all.
        await deal.stripe_event("charge.dispute.created", object_id="dp_forged", payment_intent_id=pi)
        status = await deal.wait_for(
            "the forged dispute's anomaly",
            lambda s: any("Reading the stripe dispute failed" in a for a in s.anomalies),
        )

    assert status.milestones[0].refunded == 10_000
    assert status.milestones[0].state is S.IN_PROGRESS, "no dispute opened"
    assert any("not this deal's" in a for a in status.anomalies)
    assert any("Reading the stripe dispute failed" in a for a in status.anomalies)
    assert [p.amount for p in deal.fake.payments.values() if p.kind is PaymentKind.REFUND] == [10_000]


async def test_a_refund_larger_than_what_was_collected_is_an_anomaly(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        intent = await deal.fund("m1")
        deal.fake.refund_outside(intent.payment_intent_id, 150_000, "re_too_much")
        await deal.stripe_event(
            "charge.refunded",
            object_id=intent.latest_charge or "",
            payment_intent_id=intent.payment_intent_id,
        )
        status = await deal.wait_for(
            "the anomaly", lambda s: any("more than the" in a for a in s.anomalies)
        )

    assert "USD 1,500.00 refunded" in next(a for a in status.anomalies if "more than" in a)


@dataclass
class StripeDownForReads(FakeActivities):
    """Stripe refuses the first `refusals` reads of a payment intent (a 503: retried)."""

    refusals: int = 5

    @activity.defn(name="retrieve_payment_intent")
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentState:
        if self.refusals > 0:
            self.refusals -= 1
            self.calls.append(Call("retrieve_payment_intent", payment_intent_id))
            raise ApplicationError("Stripe is unavailable (test)", type="StripeAPIError")
        return await super().retrieve_payment_intent(payment_intent_id)


async def test_a_payment_read_stripe_refuses_is_retried_then_funds(env: WorkflowEnvironment) -> None:
    """The read is an activity of its own: while Stripe keeps refusing, Temporal retries it on
    the family's backoff (the deal takes its updates meanwhile), and the payment funds the
    milestone once Stripe answers. Its one completion is in the history, read by every replay."""
    async with running_deal(env, make_spec(milestones=1), StripeDownForReads()) as deal:
        await deal.sign()
        await deal.pay("m1")
        await deal.wait_calls("the first reads", lambda f: len(f.args("retrieve_payment_intent")) >= 3)
        await deal.advance(timedelta(minutes=2))
        await deal.milestone_state("m1", S.IN_PROGRESS)
        history = await deal.handle.fetch_history()

    assert len(deal.fake.args("retrieve_payment_intent")) == 6, "five refusals, then the read"
    reads = [
        e.event_id
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "retrieve_payment_intent"
    ]
    assert len(reads) == 1, "one activity, retried by Temporal"
    started = next(
        e.activity_task_started_event_attributes
        for e in history.events
        if e.activity_task_started_event_attributes.scheduled_event_id == reads[0]
    )
    assert started.attempt == 6
    assert not [e for e in history.events if e.marker_recorded_event_attributes.marker_name == "core_local_activity"]


async def test_an_in_task_read_stripe_refuses_is_retried_on_timers_then_funds(
    env: WorkflowEnvironment, reads_in_task: None
) -> None:
    """A deal of the in-task release reads in the task its hint woke; while Stripe keeps
    refusing, the worker retries it there for a few seconds only, then on timers between
    workflow tasks (the deal takes its updates meanwhile), and the payment funds the milestone
    once Stripe answers."""
    async with running_deal(env, make_spec(milestones=1), StripeDownForReads()) as deal:
        await deal.sign()
        await deal.pay("m1")
        await deal.wait_calls("the first reads", lambda f: len(f.args("retrieve_payment_intent")) >= 3)
        await deal.advance(timedelta(minutes=1))  # the backoffs on timers: 4, 8 and 16 s
        await deal.milestone_state("m1", S.IN_PROGRESS)
        history = await deal.handle.fetch_history()

    assert len(deal.fake.args("retrieve_payment_intent")) == 6, "five refusals, then the read"
    signalled = next(e.event_id for e in history.events if e.HasField("workflow_execution_signaled_event_attributes"))
    after = [e for e in history.events if e.event_id > signalled]
    # The read that answered is the last marker; each backoff on a timer before it ended a task.
    markers = [i for i, e in enumerate(after) if e.HasField("marker_recorded_event_attributes")]
    refused = after[: markers[-1]]
    backoffs = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in refused
        if e.HasField("timer_started_event_attributes")
    ]
    assert backoffs == [timedelta(seconds=n) for n in (4, 8, 16)], "1 s and 2 s within the task"
    tasks = [e for e in refused if e.HasField("workflow_task_completed_event_attributes")]
    assert len(tasks) == len(backoffs) + 1, "the task the hint woke ended while Stripe refused"


@pytest.mark.parametrize("in_task", [False, True], ids=["read-recorded", "read-in-task"])
async def test_a_hint_naming_an_intent_stripe_does_not_know_is_an_anomaly_and_the_deal_goes_on(
    env: WorkflowEnvironment, in_task: bool, request: pytest.FixtureRequest
) -> None:
    """A signed webhook forged with a made-up payment intent: Stripe refuses the read for good
    (as chaos run seed 7 forged it); the deal records that and is funded by the real payment.
    In a deal of the in-task release too, whose local activity's refusal sdk-core hands over
    unwrapped (`calls.stripe_read_in_task`)."""
    if in_task:
        request.getfixturevalue("reads_in_task")
    async with running_deal(env, make_spec(milestones=1)) as deal:
        deal.fake.fail(
            "retrieve_payment_intent", "StripeInvalidRequest", lambda pi: pi == "pi_forged"
        )
        await deal.sign()
        await deal.stripe_event(
            "payment_intent.succeeded", object_id="pi_forged", payment_intent_id="pi_forged", milestone_key="m1"
        )
        status = await deal.wait_for(
            "the refused read", lambda s: any("Reading the payment failed" in e.message for e in s.timeline)
        )
        assert status.milestones[0].state is S.AWAITING_FUNDING
        await deal.fund("m1")
