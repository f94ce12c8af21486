"""The funnel: its steps, and the audit-event and payment kinds each one is counted from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dealflow.contract import EventKind
from dealflow.messages import DealStage, PaymentKind


@dataclass(frozen=True)
class FunnelStep:
    key: str
    label: str
    unit: Literal["deals", "milestones"]
    #: The step this one's conversion is measured against.
    rate_of: str | None


FUNNEL = (
    FunnelStep("deals_started", "Deals started", "deals", None),
    FunnelStep("sows_sent", "SOWs sent", "deals", "deals_started"),
    FunnelStep("signed", "SOWs signed", "deals", "sows_sent"),
    FunnelStep("invoiced", "Milestones invoiced", "milestones", None),
    FunnelStep("funded", "Milestones funded", "milestones", "invoiced"),
    FunnelStep("delivered", "Milestones delivered", "milestones", "funded"),
    FunnelStep("approved", "Milestones approved", "milestones", "delivered"),
    FunnelStep("released", "Milestones released", "milestones", "approved"),
    FunnelStep("refunded", "Milestones refunded", "milestones", "funded"),
    FunnelStep("disputed", "Milestones disputed", "milestones", "funded"),
    FunnelStep("cancelled", "Deals cancelled", "deals", "deals_started"),
    FunnelStep("expired", "Deals expired", "deals", "deals_started"),
)

#: Deal steps read from the workflow's audit trail (the kinds DealWorkflow records).
DEAL_EVENT_STEPS = {"sows_sent": (EventKind.SOW_SENT,), "signed": (EventKind.SIGNED,)}
#: Milestone steps: (audit event kinds, confirmed payment kinds); a milestone seen in either
#: counts once. `payment_link` is each Checkout Session sent.
MILESTONE_STEPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "invoiced": ((EventKind.PAYMENT_LINK,), ()),
    "funded": ((), (PaymentKind.CHARGE, PaymentKind.AUTHORIZATION)),
    "delivered": ((EventKind.DELIVERED,), ()),
    # Released money was approved: by the client, by the review timer, or by an operator
    # resolving a dispute (which records the resolution, not an approval).
    "approved": ((EventKind.APPROVED,), (PaymentKind.TRANSFER, PaymentKind.RELEASE)),
    "released": ((), (PaymentKind.TRANSFER, PaymentKind.RELEASE)),
    "refunded": ((), (PaymentKind.REFUND,)),
    "disputed": ((EventKind.DISPUTE_OPENED,), ()),
}
#: Funnel steps read from the deal's final stage.
STAGE_STEPS = {"cancelled": DealStage.CANCELLED, "expired": DealStage.EXPIRED}

SIGN_EVENTS = (DEAL_EVENT_STEPS["sows_sent"][0], DEAL_EVENT_STEPS["signed"][0])
DISPUTE_OPENED, DISPUTE_RESOLVED = EventKind.DISPUTE_OPENED, EventKind.DISPUTE_RESOLVED
#: A card hold given back: no money moved, so it has no payments row, only this audit event.
AUTHORIZATION_VOIDED = EventKind.AUTHORIZATION_CANCELLED
