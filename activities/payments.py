"""Stripe payments: Checkout Sessions, capture, cancel, refund, Connect transfers.

CONTRACT (being implemented): signatures below are fixed; the workflow calls these by reference.
"""

from __future__ import annotations

from temporalio import activity

from dealflow.messages import (
    CheckoutSession,
    CheckoutSessionState,
    CreateCheckoutInput,
    ExpireCheckoutInput,
    PaymentIntentAction,
    PaymentIntentState,
    RefundInput,
    RefundResult,
    TransferInput,
    TransferResult,
)


class PaymentActivities:
    @activity.defn
    async def create_checkout_session(self, input: CreateCheckoutInput) -> CheckoutSession:
        raise NotImplementedError

    @activity.defn
    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSessionState:
        raise NotImplementedError

    @activity.defn
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentState:
        raise NotImplementedError

    @activity.defn
    async def expire_checkout_session(self, input: ExpireCheckoutInput) -> CheckoutSessionState:
        raise NotImplementedError

    @activity.defn
    async def capture_payment(self, input: PaymentIntentAction) -> PaymentIntentState:
        raise NotImplementedError

    @activity.defn
    async def cancel_authorization(self, input: PaymentIntentAction) -> PaymentIntentState:
        raise NotImplementedError

    @activity.defn
    async def refund_payment(self, input: RefundInput) -> RefundResult:
        raise NotImplementedError

    @activity.defn
    async def transfer_to_vendor(self, input: TransferInput) -> TransferResult:
        raise NotImplementedError
