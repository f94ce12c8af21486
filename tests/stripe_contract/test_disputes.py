"""Stripe's Disputes API as dealflow answers a chargeback: read the dispute, stage and submit
evidence, and the money that leaves and comes back, against the sandbox and, when
STRIPE_TEST_API_KEY is set, real Stripe test mode (whose `pm_card_createDispute` card is
disputed as soon as it is paid). The bank's decision is the sandbox's control."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox.control import SandboxControl
from tests.stripe_contract.harness import eventually
from tests.stripe_contract.targets import Target, paid_intent

EVIDENCE = {
    "product_description": "Marketing site, per the signed statement of work (SHA-256 abc).",
    "customer_name": "Ada Client",
    "customer_email_address": "ada@client.example",
    "customer_purchase_ip": "203.0.113.9",
    "service_date": "2025-03-01",
}


async def usd_balance(control: SandboxControl) -> int:
    money = await control.money()
    return money["available"].get("usd", 0) + money["pending"].get("usd", 0)


async def opened_dispute(target: Target, amount: int = 4_000) -> stripe.Dispute:
    """A card payment the bank disputes at once."""
    if target.control is None:
        intent = await paid_intent(target, amount, payment_method="pm_card_createDispute")

        async def listed() -> list[stripe.Dispute]:
            page = await target.client.v1.disputes.list_async({"payment_intent": intent.id})
            return page.data

        return (await eventually(listed, timeout=30.0, what="Stripe to open the dispute"))[0]
    intent = await paid_intent(target, amount, metadata={"deal_id": "deal-evidence"})
    opened = await target.control.open_dispute(payment_intent=intent.id, reason="fraudulent")
    return await target.client.v1.disputes.retrieve_async(opened["id"])


async def test_a_new_dispute_needs_a_response_by_its_due_date(target: Target) -> None:
    dispute = await opened_dispute(target)
    assert (dispute.object, dispute.status, dispute.amount) == ("dispute", "needs_response", 4_000)
    details = dispute.evidence_details
    assert details.due_by is not None and details.due_by > dispute.created
    assert (details.has_evidence, details.past_due, details.submission_count) == (False, False, 0)
    assert dispute.evidence.product_description is None
    assert dispute.evidence.customer_signature is None
    [withdrawn] = dispute.balance_transactions
    assert (withdrawn.amount, withdrawn.type, withdrawn.reporting_category) == (
        -4_000,
        "adjustment",
        "dispute",
    )
    listed = await target.client.v1.disputes.list_async({"charge": dispute.charge})
    assert [d.id for d in listed.data] == [dispute.id]


async def test_staged_evidence_stays_editable_and_submitting_puts_it_under_review(
    target: Target,
) -> None:
    disputes = target.client.v1.disputes
    dispute = await opened_dispute(target)
    staged = await disputes.update_async(
        dispute.id, {"evidence": EVIDENCE, "submit": False, "metadata": {"deal_id": "d-1"}}
    )
    assert (staged.status, staged.evidence_details.has_evidence) == ("needs_response", True)
    assert staged.evidence_details.submission_count == 0
    submitted = await disputes.update_async(
        dispute.id, {"evidence": {"uncategorized_text": "Timeline: signed, funded, delivered."}}
    )
    assert submitted.status == "under_review"
    assert (submitted.evidence_details.submission_count, submitted.evidence_details.past_due) == (
        1,
        False,
    )
    assert submitted.evidence.product_description == EVIDENCE["product_description"]
    assert submitted.evidence.uncategorized_text == "Timeline: signed, funded, delivered."
    assert submitted.metadata.to_dict() == {"deal_id": "d-1"}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await disputes.update_async(dispute.id, {"evidence": {"customer_name": "Someone Else"}})
    assert raised.value.http_status == 400
    assert (await disputes.retrieve_async(dispute.id)).evidence.customer_name == "Ada Client"


async def test_an_unknown_evidence_field_or_too_long_a_text_is_refused(target: Target) -> None:
    target.sandbox("real Stripe's exact limits are not the contract under test")
    dispute = await opened_dispute(target)
    disputes = target.client.v1.disputes
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await disputes.update_async(dispute.id, {"evidence": {"signature": "Ada"}})
    assert unknown.value.param == "evidence[signature]"
    with pytest.raises(stripe.InvalidRequestError) as long:
        await disputes.update_async(dispute.id, {"evidence": {"uncategorized_text": "x" * 20_001}})
    assert long.value.param == "evidence[uncategorized_text]"
    assert (await disputes.retrieve_async(dispute.id)).evidence_details.has_evidence is False


async def test_a_won_dispute_reinstates_the_funds_a_lost_one_keeps_them_withdrawn(
    target: Target,
) -> None:
    control, receiver = target.sandbox("the bank's decision is a sandbox control")
    before = await usd_balance(control)
    won, lost = await opened_dispute(target, 4_000), await opened_dispute(target, 1_000)
    withdrawn = await receiver.wait_for(won.id, "charge.dispute.funds_withdrawn")
    assert withdrawn.data.object.status == "needs_response"
    await control.close_dispute(won.id, "won")
    await control.close_dispute(lost.id, "lost")
    reinstated = await receiver.wait_for(won.id, "charge.dispute.funds_reinstated")
    assert reinstated.data.object.status == "won"
    read = await target.client.v1.disputes.retrieve_async(won.id)
    assert [t.amount for t in read.balance_transactions] == [-4_000, 4_000]
    assert read.balance_transactions[1].reporting_category == "dispute_reversal"
    assert not [e for e in receiver.about(lost.id) if e.type.endswith("funds_reinstated")]
    # Both payments came in net of their card fee; only the lost dispute's money stays out.
    fees = (4_000 * 290 + 5_000) // 10_000 + 30 + (1_000 * 290 + 5_000) // 10_000 + 30
    assert await usd_balance(control) == before + 5_000 - fees - 1_000
    with pytest.raises(stripe.InvalidRequestError):
        await target.client.v1.disputes.update_async(won.id, {"evidence": EVIDENCE})


async def test_evidence_submitted_after_the_due_date_is_marked_past_due(target: Target) -> None:
    control, _ = target.sandbox("the clock is a sandbox control")
    dispute = await opened_dispute(target)
    assert dispute.evidence_details.due_by is not None
    await control.advance_clock(dispute.evidence_details.due_by - dispute.created + 60)
    late = await target.client.v1.disputes.update_async(dispute.id, {"evidence": EVIDENCE})
    assert (late.status, late.evidence_details.past_due) == ("under_review", True)


async def test_closing_a_dispute_accepts_it_as_lost(target: Target) -> None:
    dispute = await opened_dispute(target)
    closed = await target.client.v1.disputes.close_async(dispute.id)
    assert closed.status == "lost"
    again = await target.client.v1.disputes.close_async(dispute.id)
    assert again.status == "lost"
