"""Answering a chargeback with the deal's evidence."""

from __future__ import annotations

from typing import Any

import stripe
from temporalio import activity

from activities.heartbeat import heartbeating
from activities.stripe_client import StripeCalls
from activities.stripe_errors import stripe_errors
from activities.stripe_objects import dispute_state
from dealflow.messages import DisputeState, SubmitEvidenceInput


class DisputeEvidence(StripeCalls):
    @activity.defn
    @heartbeating
    async def submit_dispute_evidence(self, input: SubmitEvidenceInput) -> DisputeState:
        """Answer a chargeback: the deal's evidence, submitted to the bank at once. A dispute
        an earlier attempt answered already (or one no longer open to an answer) is read and
        returned as it is; Stripe's refusal then is no failure of this one."""
        disputes = self._stripe.v1.disputes
        params: dict[str, Any] = {
            "evidence": input.evidence.fields(),
            "metadata": {"deal_id": input.deal_id, "milestone_key": input.milestone_key},
            "submit": True,
        }
        key = self._key(input.milestone_key, "evidence", input.dispute_id)
        with stripe_errors():
            try:
                dispute = await disputes.update_async(
                    input.dispute_id, params, {"idempotency_key": key}
                )
            except stripe.InvalidRequestError as error:
                if error.http_status == 404:
                    raise
                dispute = await disputes.retrieve_async(input.dispute_id)
                if dispute.evidence_details.submission_count == 0:
                    raise
        return dispute_state(dispute)
