"""The money two sides recorded, by deal, in the ledger's kinds: the sandbox's own money log
(what it moved) and Postgres `payments` (what dealflow says was confirmed). The chaos run and
the demo test compare them to the cent."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg

from stripe_sandbox.control import SandboxControl

#: Sandbox money-log kinds as the ledger's payment kinds (and `stripe_fee`, which the ledger keeps
#: on its charges). Authorizations and their release move no money; a release without Connect
#: moves none either.
LEDGER_KIND = {
    "charge": "charge",
    "capture": "charge",
    "refund": "refund",
    "transfer": "transfer",
    "stripe_fee": "stripe_fee",
}

DealKind = tuple[str, str]


@dataclass(frozen=True)
class Movement:
    """One entry of the sandbox's money log, with the deal and milestone it belongs to."""

    kind: str
    object_id: str
    amount: int
    currency: str
    payment_intent: str | None
    deal_id: str | None
    milestone_key: str | None


def movements_of(log: list[dict[str, Any]]) -> list[Movement]:
    """The log's entries, each named by its own metadata or by its payment intent's."""
    owner = {
        m["payment_intent"]: (m["metadata"].get("deal_id"), m["metadata"].get("milestone_key"))
        for m in log
        if m["kind"] in ("charge", "authorization") and "deal_id" in m["metadata"]
    }
    movements = []
    for m in log:
        deal_id, milestone_key = m["metadata"].get("deal_id"), m["metadata"].get("milestone_key")
        if deal_id is None:
            deal_id, milestone_key = owner.get(m.get("payment_intent"), (None, None))
        movements.append(
            Movement(m["kind"], m["object_id"], m["amount"], m["currency"], m.get("payment_intent"), deal_id, milestone_key)
        )
    return movements


async def sandbox_movements(sandbox: SandboxControl) -> list[Movement]:
    return movements_of((await sandbox.money())["movements"])


def by_deal_and_kind(movements: list[Movement], deal_ids: set[str]) -> dict[DealKind, int]:
    totals: dict[DealKind, int] = defaultdict(int)
    for m in movements:
        if m.deal_id in deal_ids and m.kind in LEDGER_KIND:
            totals[(m.deal_id, LEDGER_KIND[m.kind])] += m.amount
    return dict(totals)


async def sandbox_money(sandbox: SandboxControl, deal_ids: set[str]) -> dict[DealKind, int]:
    """(deal, kind) -> minor units, from the sandbox's own money log."""
    return by_deal_and_kind(await sandbox_movements(sandbox), deal_ids)


async def ledger_money(pool: asyncpg.Pool, deal_ids: set[str]) -> dict[DealKind, int]:
    """(deal, kind) -> minor units of money the ledger says moved; `stripe_fee`: the fees its
    charges kept."""
    rows = await pool.fetch(
        """SELECT deal_id, kind, sum(amount)::bigint AS amount FROM payments
           WHERE deal_id = ANY($1::text[]) AND kind IN ('charge', 'refund', 'transfer')
           GROUP BY deal_id, kind
           UNION ALL
           SELECT deal_id, 'stripe_fee', sum(fee)::bigint FROM payments
           WHERE deal_id = ANY($1::text[]) AND fee IS NOT NULL
           GROUP BY deal_id""",
        list(deal_ids),
    )
    return {(row["deal_id"], row["kind"]): row["amount"] for row in rows}


async def mislabelled_payments(pool: asyncpg.Pool, deal_ids: set[str]) -> list[dict[str, Any]]:
    """Ledger rows of these (sandbox) deals that claim to be some other money."""
    rows = await pool.fetch(
        "SELECT * FROM payments WHERE deal_id = ANY($1::text[]) AND (NOT sandbox OR livemode)", list(deal_ids)
    )
    return [dict(row) for row in rows]


async def funding_payments(pool: asyncpg.Pool, deal_ids: set[str]) -> list[asyncpg.Record]:
    """The ledger's charges and authorizations: which payment funded which milestone."""
    return await pool.fetch(
        """SELECT deal_id, milestone_key, kind, stripe_id, amount FROM payments
           WHERE deal_id = ANY($1::text[]) AND kind IN ('charge', 'authorization')""",
        list(deal_ids),
    )
