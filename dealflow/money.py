"""Money as people read it and the platform's share of it. Integer minor units only."""

from __future__ import annotations

#: Currencies without a minor unit: an amount of them is a whole number of yen.
ZERO_DECIMAL_CURRENCIES = frozenset({"jpy"})


def platform_fee(amount: int, bps: int, fixed: int) -> int:
    """The platform's share of `amount` (minor units): `bps` basis points, rounded half up to
    the minor unit, plus `fixed`, never more than the amount itself."""
    return min(amount, (amount * bps + 5_000) // 10_000 + fixed)


def format_money(amount: int, currency: str) -> str:
    """Render minor units for people, e.g. 150000 usd -> 'USD 1,500.00'. Integer arithmetic only."""
    code = currency.upper()
    if currency in ZERO_DECIMAL_CURRENCIES:
        return f"{code} {amount:,}"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 100)
    return f"{sign}{code} {major:,}.{minor:02d}"
