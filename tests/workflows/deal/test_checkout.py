"""Deal terms on the time-skipping server: deposits (released on funding or with the first
milestone), late fees added to an unpaid milestone's amount with a new payment link, and payment
reminders on the policy's cadence; weeks of virtual time in milliseconds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    CancelDeal,
    DealStage,
    DealStatus,
    EmailKind,
    MilestoneState,
    MilestoneStatus,
    OpenDispute,
    SubmitDeliverable,
)
from dealflow.models import DealSpec
from tests.deal_harness import DealRun, make_spec, running_deal
from tests.fakes import FakeActivities

S = MilestoneState
MINUTE = timedelta(minutes=1)


def with_deposit(amount: int = 50_000, **policy: Any) -> DealSpec:
    """make_spec's two milestones after a deposit due at signature."""
    spec = make_spec(milestones=2, **policy).model_dump(mode="json")
    spec["milestones"].insert(0, {"key": "deposit", "title": "Deposit", "amount": amount, "deposit": True})
    return DealSpec.model_validate(spec)


def with_late_fee(late_fee: dict[str, Any], **policy: Any) -> DealSpec:
    return make_spec(milestones=1, late_fee=late_fee, **policy)


def milestone(status: DealStatus, key: str) -> MilestoneStatus:
    return next(m for m in status.milestones if m.key == key)


def messages(status: DealStatus, kind: str) -> list[str]:
    return [entry.message for entry in status.timeline if entry.kind == kind]


async def advance(deal: DealRun, duration: timedelta) -> None:
    """Skip `duration` a few days at a time: each skip is one request to the test server, and
    weeks of payment links replaced daily make a long one slow on a busy machine."""
    while duration > timedelta(0):
        step = min(duration, timedelta(days=4))
        await deal.advance(step)
        duration -= step


async def pay_latest(deal: DealRun, key: str) -> int:
    """The client pays the milestone's newest payment link; returns the amount it asked for."""
    session = [c for c in deal.fake.args("create_checkout_session") if c.milestone_key == key][-1]
    session_id = f"cs_test_{deal.spec.deal_id}_{key}_{session.generation}"
    intent = deal.fake.pay(session_id)
    await deal.session_completed(key, session_id, intent)
    return session.amount


async def test_a_deposit_is_released_on_funding_without_work(env: WorkflowEnvironment) -> None:
    async with running_deal(env, with_deposit()) as deal:
        await deal.sign()
        await deal.pay("deposit")
        status = await deal.milestone_state("deposit", S.RELEASED)
        assert milestone(status, "deposit").released == 50_000
        assert milestone(status, "deposit").deposit
        assert "'Deposit' is a deposit: released on funding (policy.deposit_release)" in messages(
            status, "approved"
        )
        await deal.milestone_state("m1", S.AWAITING_FUNDING)
        refusal = await deal.rejected(
            "submit_deliverable", SubmitDeliverable(milestone_key="deposit", summary="nothing")
        )
        assert "'deposit' is a deposit; it needs no deliverable" in refusal
        for key in ("m1", "m2"):
            await deal.fund(key)
            await deal.deliver(key)
            await deal.approve(key)
        final = await deal.result()
        await deal.replay()

    assert final.stage is DealStage.COMPLETED
    assert final.money.released == 50_000 + 100_000 + 200_000
    [sow] = deal.fake.mails(EmailKind.SOW_SENT)
    assert sow.context["milestones"][0]["due"] == "at signature (deposit)"
    orders = deal.fake.mails(EmailKind.WORK_ORDER)
    assert [mail.context["milestone_key"] for mail in orders] == ["m1", "m2"]
    receipts = [r.milestone_key for r in deal.fake.args("issue_receipt")]
    assert receipts == ["deposit", "m1", "m2"]


async def test_a_held_deposit_goes_with_the_first_milestone(env: WorkflowEnvironment) -> None:
    async with running_deal(env, with_deposit(deposit_release="with_first_milestone")) as deal:
        await deal.sign()
        await deal.pay("deposit")
        status = await deal.milestone_state("m1", S.AWAITING_FUNDING)
        assert milestone(status, "deposit").state is S.FUNDED
        assert status.money.funded == 50_000 and status.money.released == 0
        refusal = await deal.rejected(
            "open_dispute", OpenDispute(milestone_key="deposit", reason="changed my mind")
        )
        assert "dispute that milestone instead" in refusal
        await deal.fund("m1")
        await deal.deliver("m1")
        await deal.approve("m1")
        status = await deal.milestone_state("deposit", S.RELEASED)
        assert "'Deposit' released with 'Milestone 1' (policy.deposit_release)" in messages(
            status, "approved"
        )
        assert status.money.released == 150_000
        await deal.milestone_state("m2", S.AWAITING_FUNDING)
        await deal.replay()


async def test_a_held_deposit_is_returned_when_the_deal_is_cancelled(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, with_deposit(deposit_release="with_first_milestone")) as deal:
        await deal.sign()
        await deal.pay("deposit")
        await deal.milestone_state("m1", S.AWAITING_FUNDING)
        await deal.update("cancel_deal", CancelDeal(reason="budget cut", requested_by="client"))
        final = await deal.result()
        await deal.replay()

    assert final.stage is DealStage.CANCELLED
    assert milestone(final, "deposit").refunded == 50_000
    assert final.money.released == 0


async def test_late_fees_raise_the_amount_due_until_the_cap(env: WorkflowEnvironment) -> None:
    spec = with_late_fee(
        {"fixed": 5_000, "repeat": "monthly", "cap": 8_000, "grace": "2d"},
        fund_window="60d",
        reconcile_after="1d",
    )
    async with running_deal(env, spec) as deal:
        await deal.sign()
        status = await deal.wait_for(
            "the first late fee announced", lambda s: s.milestones[0].next_late_fee_at is not None
        )
        m1 = status.milestones[0]
        assert m1.payment_due_at is not None and m1.next_late_fee == 5_000
        assert m1.next_late_fee_at == m1.payment_due_at + timedelta(days=2)
        await deal.wait_calls("the payment link", lambda f: f.mails(EmailKind.PAYMENT_LINK))
        notice = deal.fake.mails(EmailKind.PAYMENT_LINK)[0].context["late_fee_notice"]
        assert "a late fee of USD 50.00 is added" in notice
        assert f"{m1.next_late_fee_at:%Y-%m-%d %H:%M} UTC" in notice

        await advance(deal, m1.next_late_fee_at - await deal.now() + MINUTE)
        status = await deal.wait_for("the first late fee", lambda s: s.milestones[0].late_fee)
        m1 = status.milestones[0]
        assert (m1.late_fee, m1.next_late_fee) == (5_000, 3_000)
        assert "late fee 1 of USD 50.00 added, USD 1,050.00 now due" in messages(status, "late_fee")[0]
        await deal.wait_calls(
            "a payment link for the new amount",
            lambda f: f.args("create_checkout_session")[-1].amount == 105_000,
        )
        link = deal.fake.mails(EmailKind.PAYMENT_LINK)[-1]
        assert link.context["amount_display"] == "USD 1,050.00"
        assert "This includes late fees of USD 50.00." in link.context["late_fee_notice"]

        await advance(deal, timedelta(days=30) + MINUTE)
        status = await deal.wait_for("the capped fee", lambda s: s.milestones[0].late_fee == 8_000)
        assert status.milestones[0].next_late_fee_at is None
        assert status.money.late_fees == 8_000

        assert await pay_latest(deal, "m1") == 108_000
        await deal.milestone_state("m1", S.IN_PROGRESS)
        await deal.deliver("m1")
        final = await deal.approve("m1")
        await deal.wait_calls("the receipt", lambda f: f.args("issue_receipt"))
        # The ledger's row of the deal follows in a batch of its own, maybe after the receipt.
        await deal.wait_calls(
            "the released money in the ledger",
            lambda f: _ledger_released(f) == 108_000,
            timeout=30,
        )
        await deal.replay()

    assert final.milestones[0].released == 108_000
    receipt = deal.fake.args("issue_receipt")[0]
    assert (receipt.amount, receipt.late_fee) == (108_000, 8_000)
    snapshots = [b.snapshot for b in deal.fake.args("write_ledger") if b.snapshot is not None]
    assert (snapshots[-1].amount_total, snapshots[-1].released) == (108_000, 108_000)
    old_links = [c.amount for c in deal.fake.args("create_checkout_session")]
    assert old_links[0] == 100_000 and set(old_links) == {100_000, 105_000, 108_000}


def _ledger_released(fake: FakeActivities) -> int | None:
    """The money released as the deal's newest ledger snapshot says."""
    snapshots = [b.snapshot for b in fake.args("write_ledger") if b.snapshot is not None]
    return snapshots[-1].released if snapshots else None


async def test_a_payment_before_the_late_fee_pays_no_fee(env: WorkflowEnvironment) -> None:
    spec = with_late_fee({"percent_bps": 150, "grace": "1d"})
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.advance(timedelta(days=20))
        status = await deal.status()
        await deal.replay()

    assert status.milestones[0].late_fee == 0
    assert status.milestones[0].funded == 100_000
    assert not messages(status, "late_fee")


async def test_reminders_follow_the_cadence_and_stop_once_paid(env: WorkflowEnvironment) -> None:
    spec = make_spec(
        milestones=2, reminders=["-7d", "-2d", "0", "1d"], reminder_interval="1d", fund_window="20d"
    )
    async with running_deal(env, spec) as deal:
        await deal.sign()
        status = await deal.wait_for(
            "the payment's due date", lambda s: s.milestones[0].payment_due_at is not None
        )
        due = status.milestones[0].payment_due_at
        assert due is not None
        await advance(deal, due + timedelta(days=1) + MINUTE - await deal.now())
        await deal.wait_calls(
            "three reminders", lambda f: len(f.mails(EmailKind.FUND_REMINDER)) == 4
        )
        reminders = deal.fake.mails(EmailKind.FUND_REMINDER)
        assert [m.message_key for m in reminders] == [f"fund_reminder:m1:{n}" for n in (1, 2, 3, 4)]
        sent = [e.at for e in (await deal.status()).timeline if e.kind == "fund_reminder"]
        assert [round((at - due) / timedelta(days=1)) for at in sent] == [-7, -2, 0, 1]

        await pay_latest(deal, "m1")
        await deal.milestone_state("m1", S.IN_PROGRESS)
        await deal.advance(timedelta(days=5))
        assert len(deal.fake.mails(EmailKind.FUND_REMINDER)) == 4
        await deal.replay()
