"""A vendor's Stripe Connect account as a deal sees it: can it receive the payout's transfer?"""

from __future__ import annotations

from pydantic import Field

from dealflow.messages.base import Message

__all__ = ["PayeeAccount"]


class PayeeAccount(Message):
    """What Stripe says of a connected account (`GET /v1/accounts/{id}` or `account.updated`).
    A transfer needs its `transfers` capability active; payouts to the vendor's bank are the
    vendor's business and do not stop a transfer."""

    account_id: str
    transfers_active: bool
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    #: Stripe's `requirements.currently_due` (and `past_due`): what the vendor must still give.
    requirements_due: list[str] = Field(default_factory=list)
    disabled_reason: str | None = None

    @property
    def can_receive_transfers(self) -> bool:
        return self.transfers_active

    def why_not(self) -> str:
        """Why a transfer cannot go to this account yet, for people."""
        due = ", ".join(self.requirements_due[:5]) or "nothing listed"
        reason = f"; Stripe says {self.disabled_reason}" if self.disabled_reason else ""
        return (
            f"the Stripe account {self.account_id} cannot receive transfers yet: its onboarding "
            f"is not complete (still due: {due}{reason})"
        )
