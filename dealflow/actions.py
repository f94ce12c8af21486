"""The human actions a deal accepts, by name: each is a signal and an update of DealWorkflow."""

from __future__ import annotations

from pydantic import BaseModel

from dealflow.messages import (
    ApproveMilestone,
    CancelDeal,
    OpenDispute,
    RequestRevision,
    ResolveDispute,
    SignSow,
    SubmitDeliverable,
)

#: Signal/update name -> its input model.
ACTIONS: dict[str, type[BaseModel]] = {
    "sign_sow": SignSow,
    "submit_deliverable": SubmitDeliverable,
    "approve_milestone": ApproveMilestone,
    "request_revision": RequestRevision,
    "open_dispute": OpenDispute,
    "resolve_dispute": ResolveDispute,
    "cancel_deal": CancelDeal,
}
