"""The platform's fee and money as people read it, from integer minor units only."""

from __future__ import annotations

import pytest

from dealflow.money import format_money, platform_fee


@pytest.mark.parametrize(
    ("amount", "bps", "fixed", "fee"),
    [
        (100_000, 0, 0, 0),
        (100_000, 250, 0, 2_500),
        (100_000, 250, 30, 2_530),
        (220, 250, 0, 6),  # 5.5 rounds half up
        (219, 250, 0, 5),  # 5.475
        (1_998, 250, 0, 50),  # 49.95
        (20, 5_000, 30, 20),  # never more than the amount
    ],
)
def test_platform_fee_rounds_half_up_and_never_exceeds_the_amount(
    amount: int, bps: int, fixed: int, fee: int
) -> None:
    assert platform_fee(amount, bps, fixed) == fee


def test_money_is_rendered_from_integers() -> None:
    assert format_money(150000, "usd") == "USD 1,500.00"
    assert format_money(5, "eur") == "EUR 0.05"
    assert format_money(150000, "jpy") == "JPY 150,000"
