"""Payment terms of a deal beyond its amounts: deposits, late fees and the reminder cadence.

The models are what a spec may say (`Policy.late_fee`, `Milestone.late_fee`,
`Policy.deposit_release`, `Policy.reminders`); the functions are the arithmetic the workflow and
the portal share, pure and in integer minor units. A milestone's payment is due at the end of
its due date (a deposit: at signature), or when its payment link goes out if that is later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from dealflow.durations import Duration, StrictModel, span
from dealflow.money import format_money

#: A "monthly" late fee is added again every 30 days: the same length whatever the month.
LATE_FEE_MONTH = timedelta(days=30)


class DepositRelease(StrEnum):
    """When a deposit reaches the vendor: as soon as the client pays it, or held until the
    first milestone after it is released (and returned with the rest if the deal is cancelled
    before)."""

    ON_FUNDING = "on_funding"
    WITH_FIRST_MILESTONE = "with_first_milestone"


class LateFeeRepeat(StrEnum):
    ONCE = "once"
    MONTHLY = "monthly"


class LateFee(StrictModel):
    """A fee added to an unpaid milestone once its payment is `grace` past due: `percent_bps`
    basis points of the milestone's amount (250 = 2.5 %, rounded half up to the minor unit) or
    `fixed` minor units; `monthly` adds it again every 30 days, never beyond `cap` in all."""

    percent_bps: int | None = Field(default=None, gt=0, le=10_000)
    fixed: int | None = Field(default=None, gt=0, le=99_999_999)
    repeat: LateFeeRepeat = LateFeeRepeat.ONCE
    cap: int | None = Field(default=None, gt=0, le=99_999_999)
    grace: Duration = timedelta(days=3)

    @model_validator(mode="after")
    def _one_kind(self) -> LateFee:
        if (self.percent_bps is None) == (self.fixed is None):
            raise ValueError("give exactly one of 'percent_bps' and 'fixed'")
        if self.repeat is LateFeeRepeat.MONTHLY and self.cap is None:
            raise ValueError("a monthly late fee needs a 'cap' (the most it may add in all)")
        return self


@dataclass(frozen=True)
class LateFeeNotice:
    """The next late fee of a milestone: how much it adds, and when."""

    at: datetime
    amount: int


def payment_due_at(due_at: datetime | None, opened_at: datetime, deposit: bool) -> datetime:
    """When a milestone's payment is due: a deposit at signature (its link goes out then),
    any other at the end of its due date, or when its link goes out if that comes later."""
    if deposit or due_at is None:
        return opened_at
    return max(due_at, opened_at)


def late_fee_each(terms: LateFee, amount: int) -> int:
    """One application of the fee on a milestone of `amount` (never compounded on earlier fees)."""
    if terms.percent_bps is not None:
        return (amount * terms.percent_bps + 5_000) // 10_000
    assert terms.fixed is not None
    return terms.fixed


def most_late_fees(terms: LateFee, amount: int) -> int:
    """The most the late fees can add, in all, to a milestone of `amount`."""
    if terms.repeat is LateFeeRepeat.MONTHLY:
        assert terms.cap is not None, "a monthly late fee has a cap"
        return terms.cap
    each = late_fee_each(terms, amount)
    return each if terms.cap is None else min(each, terms.cap)


def next_late_fee(
    terms: LateFee, amount: int, due_at: datetime, applied: int, added: int
) -> LateFeeNotice | None:
    """The fee to add next, `applied` fees (`added` minor units in all) after the payment fell
    due at `due_at`; None when no more is due (a one-off fee was added, or the cap is reached)."""
    if terms.repeat is LateFeeRepeat.ONCE and applied >= 1:
        return None
    fee = late_fee_each(terms, amount)
    if terms.cap is not None:
        fee = min(fee, terms.cap - added)
    if fee <= 0:
        return None
    return LateFeeNotice(at=due_at + terms.grace + applied * LATE_FEE_MONTH, amount=fee)


def reminder_times(
    offsets: Sequence[timedelta], due_at: datetime, opened_at: datetime
) -> list[datetime]:
    """The payment reminders of a cadence (offsets from the due date, `-7d` a week before),
    in order, without those not after the payment link itself went out."""
    return sorted({due_at + offset for offset in offsets if due_at + offset > opened_at})


def describe_late_fee(terms: LateFee, amount: int, currency: str) -> str:
    """The fee as the client reads it: '2.5 % (USD 25.00), once, 3 days after the due date'."""
    each = format_money(late_fee_each(terms, amount), currency)
    what = f"{Decimal(terms.percent_bps) / 100} % ({each})" if terms.percent_bps else each
    days = span(terms.grace)
    if terms.repeat is LateFeeRepeat.ONCE:
        return f"{what}, once, {days} after the due date"
    assert terms.cap is not None
    return (
        f"{what} every 30 days from {days} after the due date, at most "
        f"{format_money(terms.cap, currency)} in all"
    )

