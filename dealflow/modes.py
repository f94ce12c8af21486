"""Which money a payment is: live, Stripe test mode, or the offline sandbox's.

The three are never added together. Each payment row carries `livemode` and `sandbox`; the
database refuses a row that claims both, so every row is exactly one mode.
"""

from __future__ import annotations

from enum import StrEnum


class MoneyMode(StrEnum):
    LIVE = "live"
    TEST = "test"
    SANDBOX = "sandbox"


#: The same rule as `money_mode`, for queries over a table with `livemode` and `sandbox` columns.
MODE_SQL = "CASE WHEN livemode THEN 'live' WHEN sandbox THEN 'sandbox' ELSE 'test' END"


def money_mode(*, livemode: bool, sandbox: bool) -> MoneyMode:
    if livemode and sandbox:
        raise ValueError("livemode: sandbox money is never live")
    if livemode:
        return MoneyMode.LIVE
    return MoneyMode.SANDBOX if sandbox else MoneyMode.TEST


#: Printed on every receipt, page and report row of money that is not real.
NOT_REAL_MONEY = {
    MoneyMode.LIVE: None,
    MoneyMode.TEST: "STRIPE TEST MODE - no real money moved",
    MoneyMode.SANDBOX: "SANDBOX - offline simulation, no real money moved",
}
