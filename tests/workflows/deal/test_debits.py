"""Bank debits: a milestone paid by ACH or SEPA is processing for days, then funded or back to
awaiting funding with a new link; no funding timer fires against it meanwhile."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from dealflow.contract import EventKind
from dealflow.messages import CancelDeal, DealStage, EmailKind, MilestoneState, PaymentIntentState
from tests.deal_harness import DealRun, make_spec, running_deal

S = MilestoneState
MINUTE = timedelta(minutes=1)


def bank_spec(**policy: object):
    spec = make_spec(milestones=1, **policy)
    return spec.model_copy(update={"payment_methods": ["card", "us_bank_account"]})


async def pay_by_bank(deal: DealRun, generation: int = 1) -> PaymentIntentState:
    """The client pays by bank: the session completes unpaid, its intent processing."""
    session_id = await deal.session_of("m1", generation)
    intent = deal.fake.pay_by_debit(session_id)
    await deal.session_completed("m1", session_id, intent)
    await deal.milestone_state("m1", S.PROCESSING)
    return intent


async def async_payment(deal: DealRun, outcome: str, intent: PaymentIntentState) -> str:
    """Stripe's word on the debit, as the session's `async_payment_*` event."""
    session_id = f"cs_test_{deal.spec.deal_id}_m1_1"
    return await intent_event(
        deal,
        f"checkout.session.async_payment_{outcome}",
        intent,
        object_id=session_id,
        checkout_session_id=session_id,
    )


async def intent_event(
    deal: DealRun, type: str, intent: PaymentIntentState, **fields: str
) -> str:
    """An event about milestone m1's payment `intent` (its own, unless `fields` say otherwise)."""
    return await deal.stripe_event(
        type,
        **{"object_id": intent.payment_intent_id, **fields},
        milestone_key="m1",
        payment_intent_id=intent.payment_intent_id,
        amount=intent.amount,
        currency=intent.currency,
    )


def kinds(status, kind: EventKind) -> list[str]:
    return [entry.message for entry in status.timeline if entry.kind == kind]


async def test_sessions_offer_the_deals_payment_methods(env: WorkflowEnvironment) -> None:
    async with running_deal(env, bank_spec()) as deal:
        await deal.sign()
        await deal.session_of("m1")
    [session] = deal.fake.args("create_checkout_session")
    assert session.payment_method_types == ["card", "us_bank_account"]


async def test_a_processing_debit_is_funded_when_stripe_says_it_succeeded(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, bank_spec()) as deal:
        await deal.sign()
        intent = await pay_by_bank(deal)
        status = await deal.status()
        assert status.stage is DealStage.PROCESSING
        [m1] = status.milestones
        assert (m1.processing_method, m1.funded, m1.checkout_url) == ("us_bank_account", 0, None)
        assert m1.processing_until is not None
        assert status.next_deadline is not None
        assert status.next_deadline.action == "ask Stripe whether the bank debit went through"
        assert not deal.fake.mails(EmailKind.PAYMENT_RECEIVED)

        settled = deal.fake.settle_debit(intent.payment_intent_id, succeeded=True)
        reads = len(deal.fake.args("retrieve_payment_intent"))
        await async_payment(deal, "succeeded", intent)
        await intent_event(deal, "payment_intent.succeeded", intent)
        status = await deal.milestone_state("m1", S.IN_PROGRESS)
        await deal.wait_calls("the payment mail", lambda f: f.mails(EmailKind.PAYMENT_RECEIVED))

    # One verifying read of the payment intent for both events; money to the cent.
    assert len(deal.fake.args("retrieve_payment_intent")) == reads + 1
    [m1] = status.milestones
    assert (m1.funded, m1.captured, m1.payment_intent_id) == (100_000, 100_000, intent.payment_intent_id)
    assert (m1.processing_method, m1.processing_until) == ("us_bank_account", None)
    [charge] = [p for p in deal.fake.payments.values() if p.kind == "charge"]
    assert (charge.amount, charge.fee, charge.net) == (100_000, settled.fee, settled.net)
    assert not deal.fake.args("expire_checkout_session")


async def test_a_failed_debit_gets_a_new_link_and_a_mail_then_a_card_pays(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, bank_spec()) as deal:
        await deal.sign()
        intent = await pay_by_bank(deal)
        deal.fake.settle_debit(intent.payment_intent_id, succeeded=False)
        await async_payment(deal, "failed", intent)
        await intent_event(deal, "payment_intent.payment_failed", intent)
        await deal.session_of("m1", 2)
        status = await deal.milestone_state("m1", S.AWAITING_FUNDING)
        assert status.milestones[0].checkout_url is not None
        await deal.wait_calls("the debit mail", lambda f: f.mails(EmailKind.DEBIT_FAILED))

        card = await deal.pay("m1", 2)
        status = await deal.milestone_state("m1", S.IN_PROGRESS)

    [failed] = deal.fake.mails(EmailKind.DEBIT_FAILED)
    assert failed.to == "Ada@client.example"
    assert "bank account has been closed" in failed.context["reason"]
    links = deal.fake.mails(EmailKind.PAYMENT_LINK)
    assert [mail.message_key for mail in links] == ["payment_link:m1:1", "payment_link:m1:2"]
    assert len(kinds(status, EventKind.DEBIT_FAILED)) == 1
    assert status.milestones[0].payment_intent_id == card.payment_intent_id
    assert status.money.funded == 100_000
    assert [p.stripe_id for p in deal.fake.payments.values() if p.kind == "charge"] == [
        card.payment_intent_id
    ]


async def test_funding_timers_do_not_run_against_a_processing_debit(
    env: WorkflowEnvironment,
) -> None:
    """The fund window and reminders stop while the bank collects; after the processing days
    and the margin, Stripe is asked (and asked again while it still says processing)."""
    spec = bank_spec(fund_window="3d", reminder_interval="1d", reconcile_after="1h")
    async with running_deal(env, spec) as deal:
        await deal.sign()
        intent = await pay_by_bank(deal)
        reminders = len(deal.fake.mails(EmailKind.FUND_REMINDER))
        await deal.advance(timedelta(days=4))
        status = await deal.status()
        assert status.stage is DealStage.PROCESSING
        assert len(deal.fake.mails(EmailKind.FUND_REMINDER)) == reminders

        await deal.advance(timedelta(days=6) + MINUTE)  # 4 business days + 1 day, weekends too
        await deal.wait_for(
            "a look at Stripe",
            lambda s: any("bank debit" in m for m in kinds(s, EventKind.RECONCILIATION)),
        )
        assert (await deal.status()).stage is DealStage.PROCESSING

        deal.fake.settle_debit(intent.payment_intent_id, succeeded=True)
        await deal.advance(timedelta(hours=1) + MINUTE)
        status = await deal.milestone_state("m1", S.IN_PROGRESS)

    assert "confirmed by reconciliation" in kinds(status, EventKind.FUNDED)[0]
    assert status.milestones[0].funded == 100_000
    assert not deal.fake.mails(EmailKind.DEAL_EXPIRED)


async def cancelled_while_processing(deal: DealRun) -> PaymentIntentState:
    await deal.sign()
    intent = await pay_by_bank(deal)
    await deal.handle.signal("cancel_deal", CancelDeal(reason="budget cut", requested_by="client"))
    await deal.wait_for(
        "the cancellation asked for",
        lambda s: any(e.kind == "cancelled_requested" for e in s.timeline),
    )
    return intent


async def test_a_deal_cancelled_while_its_debit_processes_gives_the_money_back(
    env: WorkflowEnvironment,
) -> None:
    """The bank may still collect: the deal waits for Stripe's word, then refunds the debit."""
    async with running_deal(env, bank_spec()) as deal:
        intent = await cancelled_while_processing(deal)
        await deal.advance(timedelta(days=1))
        status = await deal.status()
        assert status.stage is DealStage.PROCESSING, "still waiting for the bank"
        assert not deal.fake.args("refund_payment")

        deal.fake.settle_debit(intent.payment_intent_id, succeeded=True)
        await async_payment(deal, "succeeded", intent)
        final = await deal.result()

    assert final.stage is DealStage.CANCELLED
    [refund] = deal.fake.args("refund_payment")
    assert refund.payment_intent_id == intent.payment_intent_id
    assert final.money.refunded == 100_000 and final.money.funded == 0
    assert any("came after the deal stopped" in m for m in kinds(final, EventKind.DUPLICATE_PAYMENT))
    assert not deal.fake.mails(EmailKind.PAYMENT_RECEIVED)


async def test_a_stopped_deal_asks_stripe_about_a_debit_it_hears_nothing_of(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, bank_spec(reconcile_after="1h")) as deal:
        intent = await cancelled_while_processing(deal)
        deal.fake.settle_debit(intent.payment_intent_id, succeeded=True)  # the webhook is lost
        await deal.advance(timedelta(days=11))
        final = await deal.result()

    assert final.stage is DealStage.CANCELLED
    assert [r.payment_intent_id for r in deal.fake.args("refund_payment")] == [
        intent.payment_intent_id
    ]
    assert any("bank debit" in m for m in kinds(final, EventKind.RECONCILIATION))


async def test_a_debit_that_fails_after_the_deal_stopped_needs_no_new_link(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, bank_spec()) as deal:
        intent = await cancelled_while_processing(deal)
        deal.fake.settle_debit(intent.payment_intent_id, succeeded=False)
        await async_payment(deal, "failed", intent)
        final = await deal.result()

    assert final.stage is DealStage.CANCELLED
    assert not deal.fake.args("refund_payment")
    assert not deal.fake.mails(EmailKind.DEBIT_FAILED)
    assert [m.message_key for m in deal.fake.mails(EmailKind.PAYMENT_LINK)] == ["payment_link:m1:1"]
    [failed] = kinds(final, EventKind.DEBIT_FAILED)
    assert "the deal has stopped" in failed
    assert final.milestones[0].state is S.CANCELLED
