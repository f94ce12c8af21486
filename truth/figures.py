"""What the truth report says: its figures as models, money in integer minor units.

Only `pipeline` is projected (and labelled so); every other amount is money Stripe confirmed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from dealflow.modes import MoneyMode

PROJECTED_LABEL = "PROJECTED: contract value not yet funded. Not money, not revenue."


class FunnelCount(BaseModel):
    key: str
    label: str
    unit: Literal["deals", "milestones"]
    count: int
    rate_of: str | None = None
    #: count / count of `rate_of`, rounded to 4 places; None when that count is 0. Not money.
    conversion: float | None = None


class MoneyByState(BaseModel):
    """One currency in one mode, integer minor units. Only `pipeline` is not confirmed money."""

    gross: int = Field(
        0, description="client money captured (charges), before Stripe's fees and any refund"
    )
    stripe_fees: int = Field(
        0,
        description="Stripe's fees on those charges, from their balance transactions "
        "(Stripe keeps them when a charge is refunded)",
    )
    net: int = Field(0, description="gross less stripe_fees: what the charges brought in")
    funded_held: int = Field(
        0, description="client money captured or authorized, not yet released, refunded or disputed"
    )
    disputed: int = Field(0, description="held money of milestones under an open dispute")
    withdrawn: int = Field(
        0,
        description="taken from the balance by chargebacks the bank has not decided on "
        "(withdrawn, less reinstated when won, less what a lost one refunded)",
    )
    released: int = Field(
        0, description="REVENUE: released from escrow after a capture confirmed by Stripe (gross)"
    )
    platform_fees: int = Field(0, description="of `released`, kept by the platform")
    vendor_payouts: int = Field(
        0, description="of `released`, paid out to vendors and not taken back (reversals)"
    )
    refunded: int = Field(0, description="returned to clients, confirmed by Stripe")
    kept: int = Field(0, description="kept from clients: funded_held + disputed + released")


class MonthRevenue(BaseModel):
    month: str  # YYYY-MM, UTC
    released: int


class Duration(BaseModel):
    """Seconds, over `count` samples; None when there are none."""

    count: int
    median_seconds: int | None
    p90_seconds: int | None


class Pipeline(BaseModel):
    label: str = PROJECTED_LABEL
    by_currency: dict[str, int]


class TruthReport(BaseModel):
    generated_at: datetime
    since: date | None
    mode: MoneyMode | None = Field(description="the only mode shown, or None for all three")
    funnel: list[FunnelCount]
    pipeline: Pipeline
    #: mode -> currency -> money. Modes and currencies are never summed together.
    money: dict[MoneyMode, dict[str, MoneyByState]]
    revenue_by_month: dict[MoneyMode, dict[str, list[MonthRevenue]]]
    sow_sent_to_signed: Duration
    funded_to_released: Duration
    #: Ledger rows that do not add up (kept out of the figures above, never silently).
    anomalies: list[str] = Field(default_factory=list)

    def funnel_count(self, key: str) -> int:
        return next(step.count for step in self.funnel if step.key == key)


def duration(seconds: list[int]) -> Duration:
    """Median (mean of the middle two when even) and nearest-rank 90th percentile, in whole seconds."""
    if not seconds:
        return Duration(count=0, median_seconds=None, p90_seconds=None)
    ordered = sorted(seconds)
    n = len(ordered)
    middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) // 2
    p90 = ordered[-(-9 * n // 10) - 1]
    return Duration(count=n, median_seconds=middle, p90_seconds=p90)
