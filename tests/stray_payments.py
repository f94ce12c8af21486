"""Money made on the sandbox outside any workflow, the way a client paying a stale link would."""

from __future__ import annotations

import stripe

from stripe_sandbox.control import SandboxControl


async def pay_outside_dealflow(
    client: stripe.StripeClient,
    control: SandboxControl,
    deal_id: str,
    amount: int,
    *,
    milestone_key: str = "m1",
    currency: str = "usd",
) -> str:
    """A Checkout Session naming the deal in its metadata, as dealflow makes them, paid with the
    test card; returns the payment intent. No workflow records it unless one runs for the deal."""
    metadata = {"deal_id": deal_id, "milestone_key": milestone_key}
    price = {"currency": currency, "unit_amount": amount, "product_data": {"name": milestone_key}}
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": price}],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": "http://127.0.0.1/done",
        }
    )
    outcome = await control.pay(session.id)
    assert outcome["outcome"] == "paid", outcome
    return outcome["payment_intent"]["id"]
