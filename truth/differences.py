"""What reconciliation compares and what it finds: money as either side holds it, and each
difference between the ledger and Stripe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dealflow.modes import MoneyMode
from dealflow.money import format_money

Problem = Literal["missing_in_ledger", "missing_in_stripe", "amount_differs", "fee_differs"]


@dataclass(frozen=True)
class Fees:
    """A charge's balance transaction: Stripe's fee and the net, in minor units of `currency`."""

    fee: int
    net: int
    currency: str

    def describe(self) -> str:
        return (
            f"fee {format_money(self.fee, self.currency)}, "
            f"net {format_money(self.net, self.currency)}"
        )


@dataclass(frozen=True)
class Money:
    """One confirmed amount, on either side, keyed the way the ledger keys it."""

    kind: str
    stripe_id: str
    amount: int
    currency: str
    deal_id: str | None = None
    milestone_key: str | None = None
    #: A charge's fee and net; None when unknown (not captured, or recorded before fees were read).
    fees: Fees | None = None
    #: The payment intent a refund names, to find its deal when its own metadata does not.
    payment_intent: str | None = None


@dataclass(frozen=True)
class Difference:
    problem: Problem
    kind: str
    stripe_id: str
    currency: str
    ledger_amount: int | None
    stripe_amount: int | None
    deal_id: str | None
    milestone_key: str | None
    ledger_fees: Fees | None = None
    stripe_fees: Fees | None = None

    def _side(self, amount: int | None, fees: Fees | None) -> str:
        """What one side holds, as the difference needs it shown."""
        if self.problem == "fee_differs":
            return fees.describe() if fees else "no fee"
        return "-" if amount is None else format_money(amount, self.currency)

    @property
    def ledger(self) -> str:
        return self._side(self.ledger_amount, self.ledger_fees)

    @property
    def on_stripe(self) -> str:
        return self._side(self.stripe_amount, self.stripe_fees)

    def describe(self) -> str:
        where = f"{self.deal_id}/{self.milestone_key}" if self.deal_id else "no deal"
        return (
            f"{self.problem}: {self.kind} {self.stripe_id} ({where}) "
            f"ledger {self.ledger}, Stripe {self.on_stripe}"
        )


@dataclass(frozen=True)
class Reconciliation:
    mode: MoneyMode
    since: datetime | None
    until: datetime | None
    ledger_checked: int
    stripe_checked: int
    differences: list[Difference]

    @property
    def exit_code(self) -> int:
        return 1 if self.differences else 0
