"""The comparison: the ledger's payments of a period against what Stripe holds, both ways."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from dealflow.modes import MODE_SQL, MoneyMode
from truth.differences import Difference, Fees, Money, Problem, Reconciliation
from truth.stripe_side import StripeSide

#: Ledger kinds that stand for a Stripe object; `release` (no Connect account) has none.
COMPARED_KINDS = ("charge", "authorization", "refund", "transfer", "transfer_reversal")


@dataclass(frozen=True)
class LedgerSide:
    #: The payments of the period.
    rows: list[Money]
    #: (kind, id) of every payment in this mode.
    known: set[tuple[str, str]]
    #: Every payment intent of a deal.
    intents: set[str]
    #: (deal, milestone) -> its transfer, where its reversals are read.
    transfers: dict[tuple[str, str], str]


async def _ledger(
    conn: asyncpg.Connection, mode: MoneyMode, since: datetime | None, until: datetime | None
) -> LedgerSide:
    in_period = await conn.fetch(
        f"""SELECT kind, stripe_id, amount, currency, deal_id, milestone_key, fee, net, fee_currency
            FROM payments
            WHERE kind = ANY($1::text[]) AND {MODE_SQL} = $2
              AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4)
            ORDER BY occurred_at, id""",
        list(COMPARED_KINDS),
        mode,
        since,
        until,
    )
    everything = await conn.fetch(
        f"SELECT kind, stripe_id, deal_id, milestone_key FROM payments WHERE {MODE_SQL} = $1",
        mode,
    )
    rows = [
        Money(
            r["kind"], r["stripe_id"], r["amount"], r["currency"], r["deal_id"], r["milestone_key"],
            Fees(r["fee"], r["net"], r["fee_currency"]) if r["fee"] is not None else None,
        )
        for r in in_period
    ]  # fmt: skip
    return LedgerSide(
        rows=rows,
        known={(r["kind"], r["stripe_id"]) for r in everything},
        intents={r["stripe_id"] for r in everything if r["kind"] in ("charge", "authorization")},
        transfers={
            (r["deal_id"], r["milestone_key"]): r["stripe_id"]
            for r in everything
            if r["kind"] == "transfer"
        },
    )


async def reconcile(
    pool: asyncpg.Pool,
    stripe_side: StripeSide,
    mode: MoneyMode,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Reconciliation:
    """Compare the ledger's `mode` money with the account's for [since, until)."""
    async with pool.acquire() as conn:
        ledger = await _ledger(conn, mode, since, until)

    differences: list[Difference] = []
    listed: dict[tuple[str, str], Money] = {}
    stripe_checked = 0
    async for money in stripe_side.listed(since, until):
        listed[(money.kind, money.stripe_id)] = money
        if money.kind == "refund" and money.deal_id is None and money.payment_intent:
            deal_id, milestone_key = await stripe_side.intent_deal(money.payment_intent)
            if deal_id is None and money.payment_intent not in ledger.intents:
                continue
            money = replace(money, deal_id=deal_id, milestone_key=milestone_key)
        elif money.deal_id is None:
            continue  # not dealflow's: another integration on the same account
        stripe_checked += 1
        if (money.kind, money.stripe_id) not in ledger.known:
            differences.append(_difference("missing_in_ledger", ledger=None, stripe=money))

    for row in ledger.rows:
        on_stripe = listed.get((row.kind, row.stripe_id)) or await stripe_side.by_id(
            row.kind,
            row.stripe_id,
            transfer=ledger.transfers.get((row.deal_id or "", row.milestone_key or "")),
        )
        if on_stripe is None:
            differences.append(_difference("missing_in_stripe", ledger=row, stripe=None))
        elif (on_stripe.amount, on_stripe.currency) != (row.amount, row.currency):
            differences.append(_difference("amount_differs", ledger=row, stripe=on_stripe))
        elif row.kind == "charge" and on_stripe.fees != row.fees:
            differences.append(_difference("fee_differs", ledger=row, stripe=on_stripe))
    return Reconciliation(mode, since, until, len(ledger.rows), stripe_checked, differences)


def _difference(problem: Problem, *, ledger: Money | None, stripe: Money | None) -> Difference:
    either = ledger or stripe
    assert either is not None
    return Difference(
        problem=problem,
        kind=either.kind,
        stripe_id=either.stripe_id,
        currency=either.currency,
        ledger_amount=ledger.amount if ledger else None,
        stripe_amount=stripe.amount if stripe else None,
        deal_id=either.deal_id,
        milestone_key=either.milestone_key,
        ledger_fees=ledger.fees if ledger else None,
        stripe_fees=stripe.fees if stripe else None,
    )
