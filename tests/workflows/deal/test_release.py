"""A payout to a vendor whose Stripe account cannot receive transfers yet waits and says so,
instead of a transfer that fails; once Stripe says the account is ready, the payout goes."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from dealflow.contract import EventKind
from dealflow.messages import ApproveMilestone, EmailKind, MilestoneState
from tests.deal_harness import make_spec, running_deal
from tests.fakes import FakeActivities

ACCOUNT = "acct_1Onboarding"


async def test_the_payout_waits_for_the_vendors_onboarding_then_goes(env: WorkflowEnvironment) -> None:
    spec = make_spec(milestones=1, vendor={"stripe_account": ACCOUNT}, payout_recheck=timedelta(hours=2))
    fake = FakeActivities(unready_accounts={ACCOUNT})
    async with running_deal(env, spec, fake) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.deliver("m1")
        await deal.update("approve_milestone", ApproveMilestone(milestone_key="m1", approved_by="Ada"))
        waiting = await deal.wait_for(
            "the payout to wait", lambda s: any(e.kind == EventKind.PAYOUT_WAITING for e in s.timeline)
        )
        entry = next(e for e in waiting.timeline if e.kind == EventKind.PAYOUT_WAITING)
        assert f"the Stripe account {ACCOUNT} cannot receive transfers yet" in entry.message
        assert "external_account" in entry.message and "every 2 hours" in entry.message
        assert waiting.milestones[0].state is MilestoneState.APPROVED
        assert waiting.next_deadline is not None and "ask Stripe again" in waiting.next_deadline.action
        assert waiting.anomalies == []
        # The mail goes after the timeline shows the wait.
        await deal.wait_calls("the vendor's mail", lambda f: f.mails(EmailKind.PAYOUT_WAITING))
        [told] = fake.mails(EmailKind.PAYOUT_WAITING)
        assert told.to == "vera@vendor.example" and told.context["recheck"] == "2 hours"
        assert "cannot receive transfers yet" in told.context["reason"]

        first_check = waiting.next_deadline.at
        await deal.advance(timedelta(hours=2))  # still not onboarded: asked again, still waiting
        await deal.wait_for(  # the next check's timer is set before time moves again
            "the next check", lambda s: s.next_deadline is not None and s.next_deadline.at > first_check
        )
        assert len(fake.args("retrieve_payee_account")) == 2
        assert fake.args("transfer_to_vendor") == [] and len(fake.mails(EmailKind.PAYOUT_WAITING)) == 1

        fake.unready_accounts.clear()  # the vendor completed Stripe's onboarding
        await deal.advance(timedelta(hours=2))
        released = await deal.milestone_state("m1", MilestoneState.RELEASED)
        assert [t.destination_account for t in fake.args("transfer_to_vendor")] == [ACCOUNT]
        kinds = [e.kind for e in released.timeline]
        assert kinds.index(EventKind.PAYOUT_ACCOUNT_READY) < kinds.index(EventKind.RELEASED)
        await deal.result()
        await deal.replay()


async def test_a_ready_account_is_read_once_and_paid_at_once(env: WorkflowEnvironment) -> None:
    spec = make_spec(milestones=1, vendor={"stripe_account": ACCOUNT})
    async with running_deal(env, spec) as deal:
        final = await deal.complete()
    assert deal.fake.args("retrieve_payee_account") == [ACCOUNT]
    assert [e.kind for e in final.timeline].count(EventKind.PAYOUT_WAITING) == 0
