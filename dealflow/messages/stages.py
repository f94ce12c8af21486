"""Where a deal and each of its milestones are: the stages the workflow moves through."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TERMINAL_STAGES", "DealStage", "MilestoneState"]


class MilestoneState(StrEnum):
    """Where one milestone is. `pending` waits for earlier milestones; milestones run in order."""

    PENDING = "pending"
    AWAITING_FUNDING = "awaiting_funding"
    #: Paid by bank debit: Stripe is collecting the money, which takes days and may fail.
    PROCESSING = "processing"
    FUNDED = "funded"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    REVISION_REQUESTED = "revision_requested"
    APPROVED = "approved"
    RELEASED = "released"
    DISPUTED = "disputed"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


#: The states of the active milestone that are the deal's stage while it runs: from waiting for
#: the client's money to the money's release (or a dispute about it).
_RUNNING = [
    state
    for state in MilestoneState
    if state not in {MilestoneState.PENDING, MilestoneState.REFUNDED, MilestoneState.CANCELLED}
]

DealStage = StrEnum(
    "DealStage",
    [
        ("SOW_SENT", "sow_sent"),
        ("SIGNED", "signed"),
        *((state.name, state.value) for state in _RUNNING),
        ("COMPLETED", "completed"),
        ("CANCELLED", "cancelled"),
        ("EXPIRED", "expired"),
    ],
    module=__name__,
    qualname="DealStage",
)
DealStage.__doc__ = (
    "The deal's stage. While milestones run, it is the stage of the active milestone, named and "
    "valued as that milestone's state, so the two can never drift apart."
)

TERMINAL_STAGES = frozenset({DealStage.COMPLETED, DealStage.CANCELLED, DealStage.EXPIRED})
