"""One milestone's state inside DealWorkflow: plain data and arithmetic, no Temporal calls.

Money is tracked as Stripe confirmed it. `funded` is the milestone's own payment (authorized or
captured); what went back to the client is `returned` (refunds, voided holds, lost chargebacks);
a payment that arrived twice is refunded and counted in `extra_refunded` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pydantic import Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.messages import (
        CheckoutSession,
        DisputeResolution,
        MilestoneProgress,
        MilestoneState,
        MilestoneStatus,
        SettleReversal,
    )
    from dealflow.models import Milestone, Policy

S = MilestoneState


@dataclass
class PendingResolution:
    """A dispute outcome waiting for the workflow to carry it out."""

    resolution: DisputeResolution
    notes: str
    by: str
    #: The lost chargeback (Stripe dispute id) that already returned the money: nothing to refund.
    settled_by_stripe: str | None = None
    #: The operator who resolved it (deals before DEAL_TERMS name none).
    operator: str | None = None


class MilestoneRun(MilestoneProgress):
    """A milestone as the workflow runs it: what its status shows (`MilestoneProgress`), and the
    clocks, Stripe ids and money it keeps to get there. Assigning a field sets it unchecked, as
    on a dataclass; a name that is not a field is refused."""

    spec: Milestone
    state: MilestoneState = S.PENDING
    due: date | None = None

    # funding: one Checkout Session at a time, replaced when it expires
    generation: int = 0
    session: CheckoutSession | None = None
    session_ids: list[str] = Field(default_factory=list)
    funding_deadline: datetime | None = None
    next_fund_reminder_at: datetime | None = None
    fund_reminders: int = 0
    reconcile_at: datetime | None = None
    #: The wait before the next look at Stripe, doubling while the link stays open and unpaid.
    poll_interval: timedelta | None = None
    polls: int = 0
    replace_at: datetime | None = None
    #: The next look at a bank debit being collected (PROCESSING).
    processing_check_at: datetime | None = None
    #: An accepted amendment re-priced or re-titled the milestone while its payment link was
    #: out: the link is to be replaced by one for the new terms.
    terms_changed: bool = False
    #: The payment reminders of the policy's cadence still to come, earliest first.
    reminders_due: list[datetime] = Field(default_factory=list)
    late_fees_applied: int = 0

    # money
    charge_id: str | None = None
    livemode: bool = False
    sandbox: bool = False
    #: Of the vendor's payout, what was taken back after money went back to the client.
    reversed: int = 0
    #: Of the vendor's payout, what Stripe refused to take back (their balance was short) and the
    #: operator has yet to settle (`settle_reversal`), the money's Stripe id, and the attempts.
    reversal_owed: int = 0
    reversal_after: str | None = None
    reversal_attempts: int = 0
    settlement: SettleReversal | None = None
    returned: int = 0
    extra_refunded: int = 0
    extra_intents: list[str] = Field(default_factory=list)
    capture_due_at: datetime | None = None

    # work and review
    next_overdue_at: datetime | None = None
    overdue_notices: int = 0
    review_deadline: datetime | None = None
    next_review_reminder_at: datetime | None = None
    review_reminders: int = 0

    # dispute
    paused_state: MilestoneState | None = None
    disputes: int = 0
    resolution: PendingResolution | None = None
    #: What each open chargeback (by Stripe dispute id) took from the balance.
    withdrawals: dict[str, int] = Field(default_factory=dict)
    receipt_number: str | None = None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def amount_due(self) -> int:
        """What the client is asked to pay: the milestone's amount and the late fees added."""
        return self.spec.amount + self.late_fee

    @property
    def held(self) -> int:
        """Client money Stripe confirmed for this milestone that is neither paid out nor returned."""
        return self.funded - self.released - self.returned

    @property
    def withdrawn(self) -> int:
        """Money chargebacks took from the balance that the bank has not decided on yet."""
        return sum(self.withdrawals.values())

    @property
    def refunded(self) -> int:
        return self.returned + self.extra_refunded

    @property
    def due_at(self) -> datetime | None:
        """The end of the due date (UTC): the vendor has the whole day."""
        if self.due is None:
            return None
        return datetime.combine(self.due + timedelta(days=1), time.min, UTC)

    @property
    def work_state(self) -> MilestoneState:
        """The state the work is in, looking through a dispute to where it paused."""
        if self.state is S.DISPUTED and self.paused_state is not None:
            return self.paused_state
        return self.state

    def count_returned(self, amount: int, *, extra: bool) -> None:
        """Money that went back to the client: this milestone's own, or a payment made twice."""
        if extra:
            self.extra_refunded += amount
        else:
            self.returned += amount

    def set_due(self, signed_on: date) -> None:
        self.due = self.spec.due or signed_on + timedelta(days=self.spec.due_in_days or 0)

    def enter(self, state: MilestoneState, now: datetime, policy: Policy) -> None:
        """Move to `state` and (re)start its clocks from `now`; a resumed dispute restarts them."""
        self.state = state
        if state is S.AWAITING_FUNDING:
            self.funding_deadline = now + policy.fund_window
            self.next_fund_reminder_at = now + policy.reminder_interval
        elif state is S.IN_PROGRESS:
            due_at = self.due_at
            self.next_overdue_at = (
                due_at if due_at is not None and due_at > now else now + policy.reminder_interval
            )
        elif state is S.DELIVERED:
            self.review_deadline = now + policy.review_window
            self.next_review_reminder_at = now + policy.reminder_interval

    def status(self) -> MilestoneStatus:
        return MilestoneStatus.from_attributes(
            self,
            amount=self.spec.amount,
            deposit=self.spec.deposit,
            due=(self.due or self.spec.due).isoformat() if (self.due or self.spec.due) else None,
            checkout_url=self.session.url if self.session else None,
            checkout_session_id=self.session.session_id if self.session else None,
            checkout_expires_at=self.session.expires_at if self.session else None,
        )
