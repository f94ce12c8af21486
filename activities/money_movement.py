"""Moving money: capture or void an authorization, refund a payment, read whether the vendor's
Connect account can be paid, transfer to it and reverse a transfer. A capture reads the intent back with its charge's
balance transaction expanded, so Stripe's fee and net come in the same answer. Money that leaves
(a refund, a transfer, a reversal) leaves once however late a retry comes: an earlier attempt's
object is looked for by its metadata before one is made."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import stripe
from temporalio import activity

from activities.heartbeat import heartbeating
from activities.stripe_client import StripeCalls
from activities.stripe_errors import stripe_errors
from activities.stripe_objects import WITH_BALANCE_TRANSACTION, intent_state
from dealflow.connect import retrieve_payee
from dealflow.messages import (
    PayeeAccount,
    PaymentIntentAction,
    PaymentIntentState,
    RefundInput,
    RefundResult,
    ReverseTransferInput,
    TransferInput,
    TransferResult,
    TransferReversalResult,
)

#: A refund, transfer or reversal (what `_made_before` finds).
Made = TypeVar("Made", bound=stripe.StripeObject)


class MoneyMovement(StripeCalls):
    @activity.defn
    @heartbeating
    async def capture_payment(self, input: PaymentIntentAction) -> PaymentIntentState:
        """Capture an authorization; one captured already (earlier attempt) is returned as is."""
        client = self._stripe
        key = self._key(input.milestone_key, "capture", input.payment_intent_id)
        return await self._settle_intent(
            input.payment_intent_id, "succeeded", client.v1.payment_intents.capture_async, key
        )

    @activity.defn
    @heartbeating
    async def cancel_authorization(self, input: PaymentIntentAction) -> PaymentIntentState:
        """Void an authorization; one canceled already is returned as is."""
        client = self._stripe
        key = self._key(input.milestone_key, "cancel", input.payment_intent_id)
        return await self._settle_intent(
            input.payment_intent_id, "canceled", client.v1.payment_intents.cancel_async, key
        )

    async def _settle_intent(
        self, payment_intent_id: str, done_status: str, call: Any, key: str
    ) -> PaymentIntentState:
        intents = self._stripe.v1.payment_intents
        expand = {"expand": WITH_BALANCE_TRANSACTION}
        with stripe_errors():
            try:
                intent = await call(payment_intent_id, expand, options={"idempotency_key": key})
            except (stripe.InvalidRequestError, stripe.IdempotencyError) as error:
                # Settled already, by someone else or by an earlier attempt (one sent before
                # fees were read used the key without `expand`): read what it is now.
                reused_key = isinstance(error, stripe.IdempotencyError)
                if not reused_key and error.code != "payment_intent_unexpected_state":
                    raise
                intent = await intents.retrieve_async(payment_intent_id, expand)
                if intent.status != done_status:
                    raise
        return intent_state(intent, sandbox=self._sandbox)

    @activity.defn
    @heartbeating
    async def refund_payment(self, input: RefundInput) -> RefundResult:
        client = self._stripe
        params: dict[str, Any] = {
            "payment_intent": input.payment_intent_id,
            "reason": input.reason,
            "metadata": {
                "deal_id": input.deal_id,
                "milestone_key": input.milestone_key,
                "purpose": input.purpose,
            },
        }
        if input.amount is not None:
            params["amount"] = input.amount
        key = self._key(input.milestone_key, "refund", input.purpose, input.payment_intent_id)
        with stripe_errors():
            made = client.v1.refunds.list_async({"payment_intent": input.payment_intent_id})
            refund = await _made_before(made, params["metadata"]) or (
                await client.v1.refunds.create_async(params, {"idempotency_key": key})
            )
        return RefundResult(
            refund_id=refund.id,
            amount=refund.amount,
            currency=refund.currency,
            status=refund.status or "pending",
            livemode=self._livemode,
        )

    @activity.defn
    @heartbeating
    async def transfer_to_vendor(self, input: TransferInput) -> TransferResult:
        client = self._stripe
        params: dict[str, Any] = {
            "amount": input.amount,
            "currency": input.currency.lower(),
            "destination": input.destination_account,
            "transfer_group": f"{input.deal_id}:{input.milestone_key}",
            "metadata": {"deal_id": input.deal_id, "milestone_key": input.milestone_key},
        }
        if input.source_transaction:
            params["source_transaction"] = input.source_transaction
        key = self._key(input.milestone_key, "transfer", input.destination_account)
        with stripe_errors():
            made = client.v1.transfers.list_async(
                {"transfer_group": params["transfer_group"], "destination": params["destination"]}
            )
            transfer = await _made_before(made, params["metadata"]) or (
                await client.v1.transfers.create_async(params, {"idempotency_key": key})
            )
        return TransferResult(
            transfer_id=transfer.id,
            amount=transfer.amount,
            currency=transfer.currency,
            livemode=transfer.livemode,
        )

    @activity.defn
    @heartbeating
    async def retrieve_payee_account(self, account_id: str) -> PayeeAccount:
        """Whether the vendor's connected account can receive a transfer now."""
        with stripe_errors():
            return await retrieve_payee(self._stripe, account_id)

    @activity.defn
    @heartbeating
    async def reverse_transfer(self, input: ReverseTransferInput) -> TransferReversalResult:
        """Stripe refuses (non-retryable) when the vendor's account no longer holds the money."""
        params = {
            "amount": input.amount,
            "metadata": {
                "deal_id": input.deal_id,
                "milestone_key": input.milestone_key,
                "purpose": input.purpose,
            },
        }
        key = self._key(input.milestone_key, "reversal", input.purpose)
        reversals = self._stripe.v1.transfers.reversals
        with stripe_errors():
            made = reversals.list_async(input.transfer_id)
            reversal = await _made_before(made, params["metadata"]) or (
                await reversals.create_async(input.transfer_id, params, {"idempotency_key": key})
            )
        return TransferReversalResult(
            reversal_id=reversal.id, amount=reversal.amount, currency=reversal.currency
        )


async def _made_before(
    listing: Awaitable[stripe.ListObject[Made]], metadata: dict[str, str]
) -> Made | None:
    """The object an earlier attempt made, known by its metadata. Stripe forgets an idempotency
    key after about 24 hours, and a retry can come later (Stripe or the network down that long, a
    repaired deal's rerun): with the key alone, that retry would move the money again."""
    async for made in (await listing).auto_paging_iter():
        if metadata.items() <= made.metadata.to_dict().items():
            return made
    return None
