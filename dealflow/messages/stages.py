"""Where a deal and each of its milestones are: the stages the workflow moves through."""

from __future__ import annotations

from enum import StrEnum


class DealStage(StrEnum):
    """The deal's stage. While milestones run, it is the stage of the active milestone."""

    SOW_SENT = "sow_sent"
    SIGNED = "signed"
    AWAITING_FUNDING = "awaiting_funding"
    FUNDED = "funded"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    REVISION_REQUESTED = "revision_requested"
    APPROVED = "approved"
    RELEASED = "released"
    DISPUTED = "disputed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL_STAGES = frozenset({DealStage.COMPLETED, DealStage.CANCELLED, DealStage.EXPIRED})


class MilestoneState(StrEnum):
    """Where one milestone is. `pending` waits for earlier milestones; milestones run in order."""

    PENDING = "pending"
    AWAITING_FUNDING = "awaiting_funding"
    FUNDED = "funded"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    REVISION_REQUESTED = "revision_requested"
    APPROVED = "approved"
    RELEASED = "released"
    DISPUTED = "disputed"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
