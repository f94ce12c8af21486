"""Disputes pause a milestone and its timers; each resolution (and Stripe's chargebacks) ends one."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    DealStage,
    DisputeResolution,
    EmailKind,
    MilestoneState,
    OpenDispute,
    ResolveDispute,
)
from tests.deal_harness import make_spec, running_deal

S = MilestoneState


async def test_a_dispute_pauses_the_review_window_and_resume_restarts_it(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=1, review_window="14d", reminder_interval="3d")
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.deliver("m1")
        result = await deal.update(
            "open_dispute", OpenDispute(milestone_key="m1", reason="half the pages are missing")
        )
        assert result.stage is DealStage.DISPUTED
        status = await deal.status()
        assert status.milestones[0].dispute_reason == "half the pages are missing"
        assert status.money.disputed == 100_000 and status.money.funded == 100_000
        assert status.next_deadline is None

        await deal.advance(timedelta(days=20))
        status = await deal.status()
        assert status.stage is DealStage.DISPUTED, "the review window did not run while disputed"
        assert not deal.fake.mails(EmailKind.REVIEW_REMINDER)

        resumed_at = await deal.now()
        await deal.update(
            "resolve_dispute",
            ResolveDispute(
                milestone_key="m1", resolution=DisputeResolution.RESUME, notes="pages added"
            ),
        )
        status = await deal.milestone_state("m1", S.DELIVERED)
        assert status.milestones[0].dispute_reason is None
        assert status.next_deadline and status.next_deadline.action == "remind the client to review"
        assert status.next_deadline.at - resumed_at >= timedelta(days=3) - timedelta(seconds=5)
        final = await deal.result()
        await deal.replay()

    assert final.stage is DealStage.COMPLETED
    assert any(e.kind == "approved" and e.source == "timer" for e in final.timeline)
    opened = deal.fake.mails(EmailKind.DISPUTE_OPENED)
    assert sorted(m.to for m in opened) == ["Ada@client.example", "vera@vendor.example"]
    resolved = deal.fake.mails(EmailKind.DISPUTE_RESOLVED)
    assert {(m.context["resolution"], m.context["notes"]) for m in resolved} == {
        ("resume", "pages added")
    }
    assert len(resolved) == 2


async def test_a_dispute_resolved_with_release_pays_the_vendor(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.update(
            "open_dispute", OpenDispute(milestone_key="m1", reason="late", opened_by="vendor")
        )
        await deal.update(
            "resolve_dispute", ResolveDispute(milestone_key="m1", resolution="release")
        )
        final = await deal.result()
    assert final.stage is DealStage.COMPLETED
    assert final.money.released == 100_000 and final.money.disputed == 0
    assert deal.fake.mails(EmailKind.APPROVED_RECEIPT)


async def test_a_dispute_resolved_with_refund_returns_the_money_and_moves_on(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=2)) as deal:
        await deal.sign()
        intent = await deal.fund("m1")
        await deal.update("open_dispute", OpenDispute(milestone_key="m1", reason="never started"))
        await deal.update(
            "resolve_dispute", ResolveDispute(milestone_key="m1", resolution="refund")
        )
        status = await deal.milestone_state("m2", S.AWAITING_FUNDING)
        await deal.wait_calls("the ledger's payment rows", lambda f: len(f.payments) == 2)

    [refund] = deal.fake.args("refund_payment")
    assert (refund.payment_intent_id, refund.amount, refund.purpose) == (
        intent.payment_intent_id,
        100_000,
        "dispute",
    )
    assert status.milestones[0].state is S.REFUNDED
    assert status.milestones[0].refunded == 100_000
    assert (status.money.funded, status.money.refunded, status.money.disputed) == (0, 100_000, 0)
    assert [p.kind.value for p in deal.fake.payments.values()] == ["charge", "refund"]


async def test_chargebacks_open_and_close_disputes(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=2)) as deal:
        await deal.sign()
        first = await deal.fund("m1")
        deal.fake.chargeback(first.payment_intent_id, "dp_1")
        await deal.stripe_event(
            "charge.dispute.created",
            object_id="dp_1",
            payment_intent_id=first.payment_intent_id,
            amount=100_000,
            currency="usd",
        )
        status = await deal.milestone_state("m1", S.DISPUTED)
        [opened] = [e for e in status.timeline if e.kind == "dispute_opened"]
        assert opened.source == "stripe" and "dp_1" in opened.message

        deal.fake.chargeback(first.payment_intent_id, "dp_1", status="won")
        await deal.stripe_event(
            "charge.dispute.closed",
            object_id="dp_1",
            status="won",
            payment_intent_id=first.payment_intent_id,
        )
        await deal.milestone_state("m1", S.IN_PROGRESS)

        deal.fake.chargeback(first.payment_intent_id, "dp_2")
        await deal.stripe_event(
            "charge.dispute.created", object_id="dp_2", payment_intent_id=first.payment_intent_id
        )
        await deal.milestone_state("m1", S.DISPUTED)
        deal.fake.chargeback(first.payment_intent_id, "dp_2", status="lost")
        await deal.stripe_event(
            "charge.dispute.closed",
            object_id="dp_2",
            status="won",  # what the webhook claims; Stripe's copy says lost
            payment_intent_id=first.payment_intent_id,
        )
        status = await deal.milestone_state("m1", S.REFUNDED)
        await deal.milestone_state("m2", S.AWAITING_FUNDING)
        await deal.wait_calls(
            "the lost chargeback's row",
            lambda f: (
                ("dp_2", "refund") in {(stripe_id, kind.value) for stripe_id, kind in f.payments}
            ),
        )

    assert not deal.fake.args("refund_payment"), "the bank already returned the money"
    assert status.money.refunded == 100_000 and status.money.funded == 0


async def test_capture_before_lapse_keeps_running_while_disputed(env: WorkflowEnvironment) -> None:
    """Pausing it would let the card hold lapse and lose the money the dispute is about."""
    spec = make_spec(milestones=1, capture="on_approval", capture_before_lapse="6d")
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.update("open_dispute", OpenDispute(milestone_key="m1", reason="scope"))
        status = await deal.status()
        assert status.next_deadline and "before it lapses" in status.next_deadline.action
        await deal.advance(timedelta(days=6, minutes=1))
        status = await deal.wait_for("the capture", lambda s: s.milestones[0].captured == 100_000)
    assert status.stage is DealStage.DISPUTED
