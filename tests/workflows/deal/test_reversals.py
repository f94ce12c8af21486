"""Money of a released milestone that goes back to the client takes the vendor's share of it back
from their transfer (or the platform absorbs it, by policy); a reversal Stripe refuses is an
anomaly that says what the operator must do."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    DealStage,
    DealStatus,
    MilestoneState,
    PaymentIntentState,
    PaymentKind,
    ReversalSettlement,
    SettleReversal,
)
from tests.deal_harness import DealRun, make_spec, running_deal

S = MilestoneState
CONNECT = {"stripe_account": "acct_vendor1"}


async def released(deal: DealRun) -> PaymentIntentState:
    """Sign, then fund, deliver and approve the first milestone (USD 1,000.00)."""
    await deal.sign()
    intent = await deal.fund("m1")
    await deal.deliver("m1")
    await deal.approve("m1")
    return intent


async def refund_in_the_dashboard(deal: DealRun, intent: PaymentIntentState, amount: int) -> None:
    deal.fake.refund_outside(intent.payment_intent_id, amount, f"re_{amount}")
    await deal.stripe_event(
        "charge.refunded",
        object_id=intent.latest_charge or "",
        payment_intent_id=intent.payment_intent_id,
        amount=amount,
    )


def entries(status: DealStatus, kind: str) -> list[str]:
    return [e.message for e in status.timeline if e.kind == kind]


async def test_a_refund_after_release_reverses_the_vendors_share(env: WorkflowEnvironment) -> None:
    spec = make_spec(milestones=2, vendor=CONNECT, platform_fee_bps=1_000)
    async with running_deal(env, spec) as deal:
        intent = await released(deal)
        await refund_in_the_dashboard(deal, intent, 40_000)
        status = await deal.wait_for("the reversal", lambda s: entries(s, "transfer_reversed"))
        await deal.replay()

    # the vendor got 90 % of 1,000.00; 90 % of the 400.00 refunded comes back from them
    [reversal] = deal.fake.args("reverse_transfer")
    assert (reversal.transfer_id, reversal.amount) == ("tr_m1", 36_000)
    assert reversal.purpose == intent.latest_charge
    assert status.milestones[0].state is S.RELEASED
    rows = [p for p in deal.fake.payments.values() if p.kind is PaymentKind.TRANSFER_REVERSAL]
    assert [(r.stripe_id, r.amount) for r in rows] == [(f"trr_m1_{intent.latest_charge}", 36_000)]
    assert "USD 360.00 taken back" in entries(status, "transfer_reversed")[0]


async def test_a_chargeback_lost_after_release_reverses_the_whole_payout(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=2, vendor=CONNECT)) as deal:
        intent = await released(deal)
        deal.fake.chargeback(intent.payment_intent_id, "dp_late", status="lost")
        await deal.stripe_event(
            "charge.dispute.closed", object_id="dp_late", payment_intent_id=intent.payment_intent_id
        )
        status = await deal.wait_for("the reversal", lambda s: entries(s, "transfer_reversed"))

    assert [(r.amount, r.purpose) for r in deal.fake.args("reverse_transfer")] == [
        (100_000, "dp_late")
    ]
    assert status.milestones[0].refunded == 100_000
    assert any("an operator must decide" in a for a in status.anomalies)


async def test_the_platform_absorbs_it_when_the_policy_says_so(env: WorkflowEnvironment) -> None:
    spec = make_spec(milestones=2, vendor=CONNECT, after_release_refund="absorb")
    async with running_deal(env, spec) as deal:
        intent = await released(deal)
        await refund_in_the_dashboard(deal, intent, 25_000)
        status = await deal.wait_for("the decision", lambda s: entries(s, "loss_absorbed"))

    assert not deal.fake.args("reverse_transfer")
    assert "The platform absorbs USD 250.00" in entries(status, "loss_absorbed")[0]


async def refused_reversal(deal: DealRun) -> DealStatus:
    """m1 released, then 100.00 of it refunded in the dashboard; Stripe refuses the reversal."""
    deal.fake.fail("reverse_transfer", "StripeInvalidRequest")
    intent = await released(deal)
    await refund_in_the_dashboard(deal, intent, 10_000)
    return await deal.wait_for(
        "the anomaly", lambda s: any("could not be taken back" in a for a in s.anomalies)
    )


async def finish_m2(deal: DealRun) -> None:
    await deal.fund("m2")
    await deal.deliver("m2")
    await deal.approve("m2")


async def test_a_reversal_stripe_refuses_is_an_anomaly_with_what_to_do(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=2, vendor=CONNECT)) as deal:
        status = await refused_reversal(deal)

    [anomaly] = [a for a in status.anomalies if "could not be taken back" in a]
    assert "tr_m1" in anomaly and "settle_reversal retries it" in anomaly
    assert not [p for p in deal.fake.payments.values() if p.kind is PaymentKind.TRANSFER_REVERSAL]


async def test_the_deal_waits_for_the_operator_to_retry_a_refused_reversal(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=2, vendor=CONNECT)) as deal:
        await refused_reversal(deal)
        await finish_m2(deal)
        await deal.milestone_state("m2", S.RELEASED)
        assert (await deal.status()).stage is not DealStage.COMPLETED, "owed money holds the end"

        retry = SettleReversal(milestone_key="m1", action=ReversalSettlement.RETRY)
        deal.fake.failures.pop("reverse_transfer")  # the vendor's account holds the money again
        await deal.update("settle_reversal", retry)
        final = await deal.result()

    assert final.stage is DealStage.COMPLETED
    attempts = [(r.amount, r.purpose) for r in deal.fake.args("reverse_transfer")]
    assert attempts == [(10_000, "ch_pi_1"), (10_000, "ch_pi_1:retry-1")], "a new key to retry"
    [taken] = [p for p in deal.fake.payments.values() if p.kind is PaymentKind.TRANSFER_REVERSAL]
    assert taken.amount == 10_000
    assert "retry" in entries(final, "reversal_settlement")[0]


async def test_the_operator_may_absorb_a_refused_reversal_and_asks_only_once(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=2, vendor=CONNECT)) as deal:
        await refused_reversal(deal)
        absorb = SettleReversal(milestone_key="m1", action=ReversalSettlement.ABSORB, notes="ok")
        assert "owes no refused" in await deal.rejected(
            "settle_reversal", absorb.model_copy(update={"milestone_key": "m2"})
        )
        await deal.update("settle_reversal", absorb)
        await deal.wait_for("absorbed", lambda s: bool(entries(s, "loss_absorbed")))
        assert "owes no refused" in await deal.rejected("settle_reversal", absorb)
        await finish_m2(deal)
        final = await deal.result()

    assert final.stage is DealStage.COMPLETED
    assert len(deal.fake.args("reverse_transfer")) == 1
    assert "absorbs the USD 100.00" in entries(final, "loss_absorbed")[0]


async def test_a_payout_outside_connect_asks_the_operator_to_collect(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=2)) as deal:
        intent = await released(deal)
        await refund_in_the_dashboard(deal, intent, 10_000)
        status = await deal.wait_for(
            "the anomaly", lambda s: any("collect it from the vendor" in a for a in s.anomalies)
        )

    assert not deal.fake.args("reverse_transfer")
    assert any("outside Stripe Connect" in a for a in status.anomalies)
