"""Reading Stripe again: webhooks are hints.

The retrieve_* activities re-read a session, intent, charge, refund or dispute so the workflow
acts on what Stripe says now, not on what an event claimed. A payment intent is read with its
charge's balance transaction expanded, so Stripe's fee and net come in the same answer.
"""

from __future__ import annotations

from temporalio import activity

from activities.heartbeat import heartbeating
from activities.stripe_client import StripeCalls
from activities.stripe_errors import stripe_errors
from activities.stripe_objects import (
    WITH_BALANCE_TRANSACTION,
    charge_state,
    dispute_state,
    intent_state,
    refund_state,
    session_state,
)
from dealflow.messages import (
    ChargeState,
    CheckoutSessionState,
    DisputeState,
    PaymentIntentState,
    RefundState,
)


class StripeReads(StripeCalls):
    @activity.defn
    @heartbeating
    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSessionState:
        client = self._stripe
        with stripe_errors():
            return session_state(await client.v1.checkout.sessions.retrieve_async(session_id))

    @activity.defn
    @heartbeating
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentState:
        client = self._stripe
        with stripe_errors():
            return intent_state(
                await client.v1.payment_intents.retrieve_async(
                    payment_intent_id, {"expand": WITH_BALANCE_TRANSACTION}
                ),
                sandbox=self._sandbox,
            )

    @activity.defn
    @heartbeating
    async def retrieve_charge(self, charge_id: str) -> ChargeState:
        client = self._stripe
        with stripe_errors():
            return charge_state(await client.v1.charges.retrieve_async(charge_id))

    @activity.defn
    @heartbeating
    async def retrieve_refund(self, refund_id: str) -> RefundState:
        client = self._stripe
        with stripe_errors():
            return refund_state(
                await client.v1.refunds.retrieve_async(refund_id), livemode=self._livemode
            )

    @activity.defn
    @heartbeating
    async def retrieve_dispute(self, dispute_id: str) -> DisputeState:
        client = self._stripe
        with stripe_errors():
            return dispute_state(await client.v1.disputes.retrieve_async(dispute_id))
