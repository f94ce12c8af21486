"""submit_dispute_evidence against the sandbox: the deal's evidence lands in Stripe's fields and
is submitted, a retried attempt answers what the first one did, and a dispute that can take no
evidence any more is a non-retryable refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from activities.stripe_errors import STRIPE_INVALID_REQUEST
from dealflow.messages import DisputeEvidence, SubmitEvidenceInput
from tests.activities.test_payments import SANDBOX_KEY, attempt, checkout, expect_error, payments
from tests.stripe_contract.harness import RunningSandbox, running_sandbox

EVIDENCE = DisputeEvidence(
    product_description="Marketing site under the signed statement of work (SHA-256 abc).",
    customer_name="Ada Client",
    customer_email_address="ada@client.example",
    customer_purchase_ip=None,
    service_date="2026-03-01",
    access_activity_log="Signed by Ada Client with consent.",
    uncategorized_text="Deliverables: site.zip SHA-256 ccc.",
)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(api_key=SANDBOX_KEY) as running:
        yield running


async def opened(sandbox: RunningSandbox, deal_id: str) -> str:
    workflow = attempt(f"deal-{deal_id}")
    session = await workflow.run(
        payments(sandbox.url).create_checkout_session, await checkout(sandbox, deal_id)
    )
    paid = await sandbox.control.pay(session.session_id)
    dispute = await sandbox.control.open_dispute(payment_intent=paid["payment_intent"]["id"])
    return str(dispute["id"])


def submission(deal_id: str, dispute_id: str) -> SubmitEvidenceInput:
    return SubmitEvidenceInput(
        deal_id=deal_id, milestone_key="m1", dispute_id=dispute_id, evidence=EVIDENCE
    )


async def test_the_evidence_is_submitted_once_whatever_the_attempt(
    sandbox: RunningSandbox,
) -> None:
    dispute_id = await opened(sandbox, "evidence-1")
    activities = payments(sandbox.url)
    first = await attempt("deal-evidence-1").run(
        activities.submit_dispute_evidence, submission("evidence-1", dispute_id)
    )
    again = await attempt("deal-evidence-1", 2).run(
        activities.submit_dispute_evidence, submission("evidence-1", dispute_id)
    )
    assert (first.status, first.submission_count, first.has_evidence) == ("under_review", 1, True)
    assert again == first
    stored = await sandbox.client().v1.disputes.retrieve_async(dispute_id)
    assert stored.evidence.product_description == EVIDENCE.product_description
    assert stored.evidence.customer_purchase_ip is None, "an empty field is not sent"
    assert stored.metadata.to_dict() == {"deal_id": "evidence-1", "milestone_key": "m1"}


async def test_evidence_someone_submitted_first_is_taken_as_the_answer(
    sandbox: RunningSandbox,
) -> None:
    dispute_id = await opened(sandbox, "evidence-2")
    await sandbox.client().v1.disputes.update_async(
        dispute_id, {"evidence": {"uncategorized_text": "From the dashboard."}}
    )
    answered = await attempt("deal-evidence-2").run(
        payments(sandbox.url).submit_dispute_evidence, submission("evidence-2", dispute_id)
    )
    assert (answered.status, answered.submission_count) == ("under_review", 1)


async def test_a_dispute_closed_unanswered_refuses_evidence_for_good(
    sandbox: RunningSandbox,
) -> None:
    dispute_id = await opened(sandbox, "evidence-3")
    await sandbox.control.close_dispute(dispute_id, "lost")
    error = await expect_error(
        attempt("deal-evidence-3").run(
            payments(sandbox.url).submit_dispute_evidence, submission("evidence-3", dispute_id)
        ),
        STRIPE_INVALID_REQUEST,
        retryable=False,
    )
    assert "lost" in str(error)
