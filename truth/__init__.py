"""The truth about the money: reports over the ledger and reconciliation against Stripe.

    report     pipeline (projected) against funded, released, refunded and disputed money
    reconcile  every ledger row against Stripe's own objects, and what differs
"""
