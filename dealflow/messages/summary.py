"""The `summary` query's answer: where a deal stands, for whatever polls it (the demo, chaos,
tests). Small on purpose: no timeline, no texts, no deliverables; `status` has the whole deal."""

from __future__ import annotations

from dealflow.messages.base import Message
from dealflow.messages.stages import DealStage, MilestoneState
from dealflow.messages.status import Deadline, MoneyTotals

__all__ = ["DealSummary", "MilestoneSummary"]


class MilestoneSummary(Message):
    key: str
    state: MilestoneState
    amount: int
    #: Client money Stripe confirmed for this milestone (minor units).
    funded: int = 0
    #: The milestone's open Checkout Session: a pay link exists while this is set.
    checkout_session_id: str | None = None
    #: The payment that funded the milestone.
    payment_intent_id: str | None = None


class DealSummary(Message):
    deal_id: str
    stage: DealStage
    currency: str
    milestones: list[MilestoneSummary]
    money: MoneyTotals
    next_deadline: Deadline | None = None
    #: How many anomalies the deal has noted (their texts are in `status`).
    anomalies: int = 0
