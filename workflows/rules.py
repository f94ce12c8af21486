"""Decisions of a deal that need no Temporal: plain functions of their inputs, unit-tested fast."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import timedelta

#: The first look at Stripe after a payment link went out without a webhook; then twice as long
#: each time, up to the policy's `reconcile_after`.
FIRST_POLL = timedelta(minutes=1)


def payment_owner_problem(
    metadata: Mapping[str, str], deal_id: str, milestone_keys: Collection[str]
) -> str | None:
    """Why a payment read back from Stripe is not this deal's to count, or None.

    dealflow puts `deal_id` and `milestone_key` on every session and payment intent it creates;
    a webhook can name anything, so only what Stripe says the object carries decides."""
    owner = metadata.get("deal_id")
    if owner != deal_id:
        return f"belongs to deal '{owner}'" if owner else "names no deal"
    key = metadata.get("milestone_key")
    if key not in milestone_keys:
        return f"names no milestone of this deal ('{key}')" if key else "names no milestone"
    return None


def next_poll_interval(previous: timedelta | None, longest: timedelta) -> timedelta:
    """How long until the next look at an open, unpaid Checkout Session: lost webhooks cost
    minutes, and a session left open for a day costs a few dozen reads, not thousands."""
    if previous is None:
        return min(FIRST_POLL, longest)
    return min(previous * 2, longest)
