"""A chargeback is answered with the deal's evidence well before Stripe's deadline, the operator
is told what was sent (or that it could not be), and the money Stripe withdraws and reinstates
is followed on the milestone and in the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    OPERATOR_MAILBOX,
    Artifact,
    EmailKind,
    MilestoneState,
    PaymentKind,
    SubmitEvidenceInput,
)
from tests.deal_harness import SOW, DealRun, make_spec, running_deal

S = MilestoneState
SITE = Artifact(name="site.zip", url="https://files.example/site.zip", sha256="c" * 64)


async def disputed(deal: DealRun, dispute_id: str = "dp_1") -> tuple[str, Any]:
    """Sign, fund and deliver m1; then the client's bank disputes its payment, answer due in a
    week. The payment intent and the due date."""
    await deal.sign()
    intent = await deal.fund("m1")
    await deal.deliver("m1", artifacts=[SITE])
    due_by = await deal.now() + timedelta(days=7)
    deal.fake.chargeback(intent.payment_intent_id, dispute_id, due_by=due_by)
    await deal.stripe_event(
        "charge.dispute.created", object_id=dispute_id, payment_intent_id=intent.payment_intent_id
    )
    return intent.payment_intent_id, due_by


async def test_the_evidence_goes_to_stripe_at_once_and_the_operator_is_told(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        _, due_by = await disputed(deal)
        status = await deal.wait_for(
            "the evidence",
            lambda s: any(e.kind == "dispute_evidence_submitted" for e in s.timeline),
        )
        await deal.wait_calls("the operator's mail", lambda f: f.mails(EmailKind.DISPUTE_EVIDENCE))
        await deal.replay()

    [submitted] = [e for e in status.timeline if e.kind == "dispute_evidence_submitted"]
    assert submitted.at < due_by - timedelta(days=6), "submitted at once, not near the deadline"
    assert status.milestones[0].state is S.DISPUTED
    [call] = deal.fake.args("submit_dispute_evidence")
    assert isinstance(call, SubmitEvidenceInput)
    assert (call.deal_id, call.milestone_key, call.dispute_id) == (deal.spec.deal_id, "m1", "dp_1")
    evidence = call.evidence
    assert SOW in evidence.product_description
    assert status.sow_sha256 in evidence.product_description
    assert (evidence.customer_name, evidence.customer_email_address) == (
        "Ada Client",
        "Ada@client.example",
    )
    assert evidence.customer_purchase_ip == "203.0.113.9"
    signature = status.signature
    assert signature is not None
    for shown in ("Ada Client", "consent", "203.0.113.9", "pytest", signature.sow_sha256):
        assert shown in evidence.access_activity_log
    assert signature.signed_at.strftime("%Y-%m-%d %H:%M") in evidence.access_activity_log
    assert (
        evidence.service_date
        == status.milestones[0].deliverables[0].submitted_at.date().isoformat()
    )
    text = evidence.uncategorized_text
    assert "as text" in text and "site.zip" in text and "c" * 64 in text
    assert "Timeline:" in text and "Statement of work signed by Ada Client" in text
    assert "Receipt: none issued yet" in text

    [mail] = deal.fake.mails(EmailKind.DISPUTE_EVIDENCE)
    assert mail.to == OPERATOR_MAILBOX
    assert (mail.context["submitted"], mail.context["problem"]) == (True, "")
    assert mail.context["due_by"] == due_by.strftime("%Y-%m-%d %H:%M UTC")
    assert [item["field"] for item in mail.context["evidence"]] == list(evidence.fields())
    assert "dp_1" in mail.subject


async def test_withdrawn_funds_are_followed_until_the_won_dispute_reinstates_them(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        intent_id, due_by = await disputed(deal)
        for _ in range(2):  # Stripe may send an event twice, under two ids
            await deal.stripe_event(
                "charge.dispute.funds_withdrawn", object_id="dp_1", payment_intent_id=intent_id
            )
        status = await deal.wait_for("the withdrawal", lambda s: s.money.withdrawn)
        assert (status.money.withdrawn, status.milestones[0].withdrawn) == (100_000, 100_000)

        deal.fake.chargeback(intent_id, "dp_1", status="won", due_by=due_by)
        await deal.stripe_event(
            "charge.dispute.closed", object_id="dp_1", payment_intent_id=intent_id
        )
        await deal.stripe_event(
            "charge.dispute.funds_reinstated", object_id="dp_1", payment_intent_id=intent_id
        )
        status = await deal.milestone_state("m1", S.DELIVERED)
        status = await deal.wait_for("the reinstatement", lambda s: not s.money.withdrawn)
        await deal.wait_calls(
            "the ledger's dispute rows",
            lambda f: ("dp_1", PaymentKind.DISPUTE_REINSTATEMENT) in f.payments,
        )
        await deal.replay()

    kinds = [e.kind for e in status.timeline]
    assert kinds.count("dispute_funds_withdrawn") == 1
    assert kinds.count("dispute_funds_reinstated") == 1
    assert status.money.funded == 100_000 and status.money.refunded == 0
    rows = deal.fake.payments
    assert rows["dp_1", PaymentKind.DISPUTE_WITHDRAWAL].amount == 100_000
    assert rows["dp_1", PaymentKind.DISPUTE_REINSTATEMENT].amount == 100_000


async def test_a_lost_dispute_leaves_nothing_withdrawn_it_is_refunded(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        intent_id, due_by = await disputed(deal)
        await deal.stripe_event(
            "charge.dispute.funds_withdrawn", object_id="dp_1", payment_intent_id=intent_id
        )
        await deal.wait_for("the withdrawal", lambda s: s.money.withdrawn)
        deal.fake.chargeback(intent_id, "dp_1", status="lost", due_by=due_by)
        await deal.stripe_event(
            "charge.dispute.closed", object_id="dp_1", payment_intent_id=intent_id
        )
        status = await deal.result()
    assert (status.money.withdrawn, status.money.refunded) == (0, 100_000)


async def test_a_submission_that_fails_for_good_is_an_anomaly_the_operator_hears_of(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        deal.fake.fail("submit_dispute_evidence", "StripeInvalidRequest")
        _, due_by = await disputed(deal)
        status = await deal.wait_for("the anomaly", lambda s: s.anomalies)
        await deal.wait_calls("the operator's mail", lambda f: f.mails(EmailKind.DISPUTE_EVIDENCE))
        await deal.wait_calls(
            "the anomaly's ledger row",
            lambda f: any(e.kind == "anomaly" for e in f.ledger_events.values()),
        )

    [anomaly] = status.anomalies
    assert "dp_1" in anomaly and "could not be submitted" in anomaly and "operator" in anomaly
    assert not any(e.kind == "dispute_evidence_submitted" for e in status.timeline)
    [mail] = deal.fake.mails(EmailKind.DISPUTE_EVIDENCE)
    assert mail.context["submitted"] is False
    assert "submit_dispute_evidence refused (test)" in mail.context["problem"]
    assert mail.context["due_by"] == due_by.strftime("%Y-%m-%d %H:%M UTC")


async def test_a_dispute_that_takes_no_evidence_is_not_answered(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        intent = await deal.fund("m1")
        deal.fake.chargeback(intent.payment_intent_id, "dp_1")  # no due date: nothing to answer
        await deal.stripe_event(
            "charge.dispute.created", object_id="dp_1", payment_intent_id=intent.payment_intent_id
        )
        status = await deal.wait_for(
            "the note", lambda s: any("takes no evidence" in e.message for e in s.timeline)
        )
    assert status.milestones[0].state is S.DISPUTED
    assert not deal.fake.args("submit_dispute_evidence")
