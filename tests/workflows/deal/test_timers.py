"""Every durable timer of DealWorkflow, with weeks of virtual time skipped in milliseconds."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    DealStage,
    EmailKind,
    MilestoneState,
    RequestRevision,
    SubmitDeliverable,
)
from tests.deal_harness import make_spec, running_deal

MINUTE = timedelta(minutes=1)


def kinds(status, kind: str) -> list[str]:
    return [entry.message for entry in status.timeline if entry.kind == kind]


async def test_unsigned_deal_is_reminded_then_expires(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(sign_window="14d", reminder_interval="3d")) as deal:
        await deal.advance(timedelta(days=3) + MINUTE)
        await deal.wait_calls("the first sign reminder", lambda f: f.mails(EmailKind.SIGN_REMINDER))
        status = await deal.status()
        assert status.stage is DealStage.SOW_SENT
        assert status.next_deadline and status.next_deadline.action == "remind the client to sign"
        final = await deal.result()  # the server skips to the end of the sign window

    assert final.stage is DealStage.EXPIRED
    reminders = deal.fake.mails(EmailKind.SIGN_REMINDER)
    assert [m.message_key for m in reminders] == [f"sign_reminder:{n}" for n in (1, 2, 3, 4)]
    expired = deal.fake.mails(EmailKind.DEAL_EXPIRED)
    assert sorted(m.to for m in expired) == ["Ada@client.example", "vera@vendor.example"]
    assert "not signed within 14 days" in expired[0].context["reason"]
    assert not deal.fake.args("create_checkout_session")


async def test_unpaid_links_are_reconciled_replaced_and_the_deal_expires(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(
        milestones=1,
        checkout_session_ttl="24h",
        reconcile_after="1h",
        reminder_interval="36h",
        fund_window="3d",
    )
    async with running_deal(env, spec) as deal:
        await deal.sign()
        first = await deal.session_of("m1", 1)

        await deal.advance(timedelta(hours=1) + MINUTE)
        await deal.wait_calls(
            "a reconciliation read", lambda f: f.args("retrieve_checkout_session")
        )
        assert (await deal.status()).stage is DealStage.AWAITING_FUNDING

        await deal.advance(timedelta(hours=23))
        second = await deal.session_of("m1", 2)
        names = deal.fake.names()
        expired_at = names.index("expire_checkout_session")
        assert deal.fake.args("expire_checkout_session")[0].session_id == first
        assert expired_at < len(names) - 1 - names[::-1].index("create_checkout_session"), (
            "the old session is expired before the new one is created"
        )
        await deal.wait_calls(
            "the second payment link", lambda f: len(f.mails(EmailKind.PAYMENT_LINK)) == 2
        )
        link = deal.fake.mails(EmailKind.PAYMENT_LINK)[1]
        assert link.context["checkout_url"].endswith(second)
        assert link.message_key == "payment_link:m1:2"

        await deal.advance(timedelta(hours=13))
        await deal.wait_calls("a payment reminder", lambda f: f.mails(EmailKind.FUND_REMINDER))
        assert deal.fake.mails(EmailKind.FUND_REMINDER)[0].context["checkout_url"].endswith(second)

        final = await deal.result()

    assert final.stage is DealStage.EXPIRED
    assert final.milestones[0].state is MilestoneState.CANCELLED
    assert "was not funded within 3 days" in kinds(final, "expired")[0]
    created = [s.session_id for s in deal.fake.sessions.values()]
    assert [s.status for s in deal.fake.sessions.values()] == ["expired"] * len(created)
    assert len(deal.fake.mails(EmailKind.DEAL_EXPIRED)) == 2


async def test_reconciliation_funds_a_payment_whose_webhook_never_came(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1, reconcile_after="1h")) as deal:
        await deal.sign()
        deal.fake.pay(await deal.session_of("m1"))  # paid, but the webhook is lost
        await deal.advance(timedelta(hours=1) + MINUTE)
        status = await deal.milestone_state("m1", MilestoneState.IN_PROGRESS)
    assert "confirmed by reconciliation" in kinds(status, "funded")[0]
    assert status.money.funded == 100_000


async def test_open_links_are_polled_on_a_backoff_so_a_lost_webhook_costs_minutes(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1, reconcile_after="1h")) as deal:
        await deal.sign()
        session_id = await deal.session_of("m1")
        await deal.advance(timedelta(hours=3))
        polls_before = len(deal.fake.args("retrieve_checkout_session"))
        deal.fake.pay(session_id)  # three hours later, and the webhook is lost
        await deal.advance(timedelta(hours=1) + MINUTE)
        status = await deal.milestone_state("m1", MilestoneState.IN_PROGRESS)
    # 1, 2, 4, 8, 16, 32 minutes, then hourly: seven looks in the first three hours.
    assert polls_before == 7
    assert "confirmed by reconciliation" in kinds(status, "funded")[0]
    assert len(kinds(status, "reconciliation")) == 1, "one timeline entry, not one per poll"


async def test_a_session_paid_when_it_expires_funds_instead_of_being_replaced(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(
        milestones=1, capture="on_approval", checkout_session_ttl="24h", reconcile_after="2d"
    )
    async with running_deal(env, spec) as deal:
        await deal.sign()
        session_id = await deal.session_of("m1")
        # Polls back off to 17 h apart here: the next look at Stripe is the expiry check.
        await deal.advance(timedelta(hours=23))
        intent = deal.fake.pay(session_id)
        assert intent.status == "requires_capture"  # Stripe leaves the session "unpaid"
        await deal.advance(timedelta(hours=1) + MINUTE)
        status = await deal.milestone_state("m1", MilestoneState.IN_PROGRESS)
    assert "confirmed by the payment link's expiry check" in kinds(status, "funded")[0]
    assert "authorized" in kinds(status, "funded")[0]
    assert [s.generation for s in deal.fake.args("create_checkout_session")] == [1]
    assert status.milestones[0].captured == 0 and status.money.funded == 100_000


async def test_overdue_vendor_is_told_on_the_due_date_then_every_interval(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1, reminder_interval="3d")) as deal:
        await deal.sign()
        await deal.fund("m1")
        due = (await deal.status()).milestones[0].due  # signing date + 10 days
        await deal.advance(timedelta(days=10))
        assert not deal.fake.mails(EmailKind.DELIVERY_OVERDUE), "not overdue during the due date"
        await deal.advance(timedelta(days=1) + MINUTE)
        await deal.wait_calls("an overdue notice", lambda f: f.mails(EmailKind.DELIVERY_OVERDUE))
        await deal.advance(timedelta(days=3))
        await deal.wait_calls(
            "a second notice", lambda f: len(f.mails(EmailKind.DELIVERY_OVERDUE)) == 2
        )
        notices = deal.fake.mails(EmailKind.DELIVERY_OVERDUE)
    assert [n.to for n in notices] == ["vera@vendor.example"] * 2
    assert [n.message_key for n in notices] == ["delivery_overdue:m1:1", "delivery_overdue:m1:2"]
    assert due is not None


async def test_silent_client_is_reminded_then_the_work_is_approved_automatically(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(
        env, make_spec(milestones=1, review_window="14d", reminder_interval="5d")
    ) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.deliver("m1")
        await deal.advance(timedelta(days=5) + MINUTE)
        await deal.wait_calls("a review reminder", lambda f: f.mails(EmailKind.REVIEW_REMINDER))
        assert (await deal.status()).stage is DealStage.DELIVERED
        final = await deal.result()

    assert final.stage is DealStage.COMPLETED
    assert [m.message_key for m in deal.fake.mails(EmailKind.REVIEW_REMINDER)] == [
        "review_reminder:m1:1",
        "review_reminder:m1:2",
    ]
    [auto] = [e.message for e in final.timeline if e.kind == "approved" and e.source == "timer"]
    assert "14 days review window" in auto and "approved automatically" in auto
    assert final.money.released == 100_000
    assert deal.fake.mails(EmailKind.APPROVED_RECEIPT)


async def test_authorization_is_captured_before_it_lapses_and_held_until_approval(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=1, capture="on_approval", capture_before_lapse="6d")
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await deal.fund("m1")
        assert deal.fake.args("create_checkout_session")[0].capture_method.value == "manual"
        assert (await deal.status()).milestones[0].captured == 0
        await deal.advance(timedelta(days=6) + MINUTE)
        await deal.wait_calls("the capture", lambda f: f.args("capture_payment"))
        status = await deal.wait_for(
            "the capture recorded", lambda s: s.milestones[0].captured == 100_000
        )
        assert status.milestones[0].state is MilestoneState.IN_PROGRESS
        assert status.money.released == 0 and status.money.funded == 100_000
        assert "captured before the card authorization lapsed" in kinds(status, "captured")[0]
        await deal.deliver("m1")
        await deal.approve("m1")
        final = await deal.result()
    assert len(deal.fake.args("capture_payment")) == 1
    assert {p.kind.value for p in deal.fake.payments.values()} == {
        "authorization",
        "charge",
        "release",
    }
    assert final.money.released == 100_000


async def test_on_approval_deal_captures_when_approved(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1, capture="on_approval")) as deal:
        await deal.complete()
        names = deal.fake.names()
    assert names.index("capture_payment") < names.index("issue_receipt")
    release = [p for p in deal.fake.payments.values() if p.kind.value == "release"]
    assert [r.stripe_id for r in release] == [
        deal.fake.args("capture_payment")[0].payment_intent_id
    ]


async def test_timers_of_a_revised_milestone_restart(env: WorkflowEnvironment) -> None:
    """A deliverable submitted again gets a fresh review window."""
    async with running_deal(
        env, make_spec(milestones=1, review_window="4d", reminder_interval="10d")
    ) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.deliver("m1")
        await deal.advance(timedelta(days=3))
        await deal.update(
            "request_revision", RequestRevision(milestone_key="m1", notes="bigger logo")
        )
        await deal.update("submit_deliverable", SubmitDeliverable(milestone_key="m1", summary="v2"))
        await deal.advance(timedelta(days=3))
        status = await deal.status()
        assert status.stage is DealStage.DELIVERED, "the first window would have lapsed by now"
        final = await deal.result()
    assert final.stage is DealStage.COMPLETED
