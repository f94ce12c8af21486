"""Stripe payments: Checkout Sessions, capture, cancel, refund, Connect transfers, disputes.

`PaymentActivities` is the one object the worker registers and the workflow names; each family
of its activities lives in a module of its own: the client and idempotency keys
(`stripe_client`), payment links (`checkout`), re-reading Stripe (`stripe_reads`), moving
money (`money_movement`) and answering chargebacks (`dispute_evidence`). Every activity
heartbeats, so a worker that dies mid-call is noticed at the heartbeat timeout.
"""

from __future__ import annotations

from activities.checkout import CheckoutActivities
from activities.dispute_evidence import DisputeEvidence
from activities.money_movement import MoneyMovement
from activities.stripe_reads import StripeReads


class PaymentActivities(CheckoutActivities, StripeReads, MoneyMovement, DisputeEvidence):
    """Every Stripe activity, on one client (`StripeCalls`)."""
