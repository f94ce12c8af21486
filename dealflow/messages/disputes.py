"""A chargeback answered: the evidence a deal holds, as Stripe's dispute evidence fields name
it (the activity answers with the dispute's `DisputeState`)."""

from __future__ import annotations

from pydantic import Field

from dealflow.messages.base import Message

__all__ = ["DisputeEvidence", "SubmitEvidenceInput"]

#: Stripe's limit on one evidence text field.
EVIDENCE_FIELD_MAX = 20_000


class DisputeEvidence(Message):
    """Text evidence only (dealflow uploads no files): the signed statement of work, the
    signature, the deliverables with their hashes, the receipts and the timeline, in Stripe's
    fields. A field the deal cannot fill is None and is not sent."""

    product_description: str = Field(max_length=EVIDENCE_FIELD_MAX)
    customer_name: str
    customer_email_address: str
    customer_purchase_ip: str | None = None
    #: The day the service was delivered (ISO date), when it was.
    service_date: str | None = None
    #: How the client signed: name, consent, IP, user agent, time.
    access_activity_log: str = Field(max_length=EVIDENCE_FIELD_MAX)
    #: The deliverables, the receipts and the deal's timeline.
    uncategorized_text: str = Field(max_length=EVIDENCE_FIELD_MAX)

    def fields(self) -> dict[str, str]:
        """The evidence as Stripe's API takes it: the fields that have a value."""
        return {name: value for name, value in self.model_dump().items() if value}


class SubmitEvidenceInput(Message):
    deal_id: str
    milestone_key: str
    dispute_id: str
    evidence: DisputeEvidence
