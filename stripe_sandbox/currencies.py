"""The currencies the sandbox takes, and how its checkout page shows an amount.

Its own list, not dealflow's: the sandbox stands alone. A currency dealflow adds must be added
here too, or the sandbox refuses it as Stripe refuses an unknown one.
"""

from __future__ import annotations

SUPPORTED = frozenset({"usd", "eur", "gbp", "cad", "aud", "nzd", "chf", "sek", "nok", "dkk", "jpy"})
#: Stripe's zero-decimal currencies among them: amounts are whole units, not cents.
ZERO_DECIMAL = frozenset({"jpy"})


def display_amount(amount: int, currency: str) -> str:
    """As the hosted checkout page shows it: 150000 usd -> 'USD 1,500.00', 1500 jpy -> 'JPY 1,500'."""
    if currency in ZERO_DECIMAL:
        return f"{currency.upper()} {amount:,}"
    units, cents = divmod(amount, 100)
    return f"{currency.upper()} {units:,}.{cents:02d}"
