"""Stripe events that reach a deal after its workflow closed, and which of them need nobody.

Stripe delivers late (it retries for days after an outage) and a deal does not wait for its
webhooks: it finds its payments by reading Stripe, and cancelling it expires its own payment
links. So a completed or cancelled deal routinely gets events it already accounted for. Those are
kept with a note saying why nothing is owed; every other event for an ended deal (money the
ledger never saw, a dispute, a refund) is given up as undeliverable, for an operator.

What the deal accounted for is read from its ledger, which a deal finishes writing before its
workflow closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from bridge.inbox import InboxStatus
from bridge.stripe_events import FUNDING_EVENTS
from dealflow.messages import StripeEventSignal

#: Outcomes that moved no money: a link that expired, an intent cancelled or an attempt that failed.
MOVED_NO_MONEY = frozenset(
    {
        "checkout.session.expired",
        "checkout.session.async_payment_failed",
        "payment_intent.canceled",
        "payment_intent.payment_failed",
    }
)
#: Reports of money the deal took, and the ledger kinds that show it took it: a captured
#: intent is a charge; a completed session or a held card is either a charge or a hold.
FUNDED_AS = {
    **{event_type: ("charge", "authorization") for event_type in FUNDING_EVENTS},
    "checkout.session.async_payment_succeeded": ("charge", "authorization"),
    "payment_intent.succeeded": ("charge",),
}


@dataclass(frozen=True)
class Accounted:
    """How to keep an event its ended deal had accounted for, and why nobody need act on it."""

    status: InboxStatus
    note: str


async def accounted_for(
    pool: asyncpg.Pool, deal_id: str, event: StripeEventSignal, ended: str
) -> Accounted | None:
    """Whether the ended deal had accounted for `event` (`ended`: how it ended, for the note);
    None when somebody must look at it."""
    if event.type in MOVED_NO_MONEY:
        return Accounted(InboxStatus.IGNORED, f"{ended}; a {event.type} moved no money")
    kinds = FUNDED_AS.get(event.type)
    if kinds is None or event.payment_intent_id is None:
        return None
    recorded = await pool.fetchval(
        """SELECT EXISTS (SELECT 1 FROM payments
                          WHERE deal_id = $1 AND stripe_id = $2 AND kind = ANY($3::text[]))""",
        deal_id,
        event.payment_intent_id,
        list(kinds),
    )
    if not recorded:
        return None
    return Accounted(
        InboxStatus.FOLDED,
        f"{ended} after recording the payment {event.payment_intent_id} this event reports",
    )
