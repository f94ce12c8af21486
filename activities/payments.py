"""Stripe payments: Checkout Sessions, capture, cancel, refund, Connect transfers.

Every call carries an explicit Idempotency-Key made from the workflow id, the milestone, the
action and what distinguishes this call from its siblings (session generation, refund purpose,
payment intent), never the activity attempt: a retried activity must send the same key, so
Stripe answers the first result instead of moving money twice. The library's automatic keys
change on every activity attempt and would protect nothing.

Errors are classified for Temporal: a declined card, an invalid request, a reused key and a bad
key are non-retryable `ApplicationError`s the workflow handles; rate limits, 5xx and network
errors are retryable (after the library's own `max_network_retries`).

Each client is one Stripe Customer, found by its email and created the first time, and every
Checkout Session names it: the client's payments are linked, and Stripe's receipts (when the
account's "Successful payments" emails are on) go to the Customer's address. dealflow mails its
own receipt, so it does not set `payment_intent_data.receipt_email`, which in live mode would
make Stripe send one regardless of the account's email settings.

Webhooks are hints: the retrieve_* activities re-read a session, intent, charge, refund or dispute
so the workflow acts on what Stripe says now, not on what an event claimed. A payment intent is
read (and captured) with its charge's balance transaction expanded, so Stripe's fee and net come
in the same answer. Every activity heartbeats, so a worker that dies mid-call is noticed at the
heartbeat timeout; the client's timeouts and retries come from dealflow.activity_timeouts.STRIPE,
which also bounds an attempt.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.stripe_errors import STRIPE_INVALID_REQUEST, STRIPE_NOT_CONFIGURED, stripe_errors
from activities.stripe_objects import (
    WITH_BALANCE_TRANSACTION,
    charge_state,
    dispute_state,
    intent_state,
    refund_state,
    session_state,
    timestamp,
)
from dealflow.activity_timeouts import STRIPE
from dealflow.connect import retrieve_payee
from dealflow.links import PortalLinks
from dealflow.messages import (
    ChargeState,
    CheckoutSession,
    CheckoutSessionState,
    CreateCheckoutInput,
    DisputeState,
    ExpireCheckoutInput,
    PayeeAccount,
    PaymentIntentAction,
    PaymentIntentState,
    RefundInput,
    RefundResult,
    RefundState,
    ReverseTransferInput,
    SubmitEvidenceInput,
    TransferInput,
    TransferResult,
    TransferReversalResult,
)
from dealflow.settings import is_offline_sandbox

_IDEMPOTENCY_KEY_MAX = 255
#: Customer metadata naming the client dealflow made it for (`client_identity` of the email).
CLIENT_METADATA = "dealflow_client"


def idempotency_key(workflow_id: str, milestone_key: str, action: str, *discriminators: str) -> str:
    """`dealflow:<workflow>:<milestone>:<action>:<...>`, hashed when longer than Stripe allows."""
    key = ":".join(("dealflow", workflow_id, milestone_key, action, *discriminators))
    if len(key) <= _IDEMPOTENCY_KEY_MAX:
        return key
    return "dealflow:sha256:" + hashlib.sha256(key.encode()).hexdigest()


def client_identity(email: str) -> str:
    """Who a client is: the email trimmed and lowercased, so `Ana@X.com` on one deal and
    `ana@x.com` on another share one Customer (Stripe's list filter on email is case-sensitive)."""
    return email.strip().lower()


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added to its query string (existing parameters kept)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class PaymentActivities:
    def __init__(
        self,
        *,
        api_key: str | None,
        api_base: str | None,
        links: PortalLinks,
        max_network_retries: int = STRIPE.max_network_retries,
    ) -> None:
        self._links = links
        self._client: stripe.StripeClient | None = None
        #: Refund objects carry no `livemode`; the key says which money they moved.
        self._livemode = bool(api_key and api_key.startswith(("sk_live_", "rk_live_")))
        self._sandbox = is_offline_sandbox(api_base)
        if api_key:
            self._client = stripe.StripeClient(
                api_key,
                base_addresses={"api": api_base} if api_base else None,
                max_network_retries=max_network_retries,
                http_client=stripe.HTTPXClient(timeout=httpx.Timeout(**asdict(STRIPE.http))),
            )

    @property
    def _stripe(self) -> stripe.StripeClient:
        if self._client is None:
            raise ApplicationError(
                "STRIPE_API_KEY is not set, so dealflow cannot create payment links or move money. "
                "Set STRIPE_API_KEY (a Stripe test key, or run `dealflow sandbox` and use its key "
                "and STRIPE_API_BASE).",
                type=STRIPE_NOT_CONFIGURED,
                non_retryable=True,
            )
        return self._client

    def _key(self, milestone_key: str, action: str, *discriminators: str) -> str:
        return idempotency_key(activity.info().workflow_id, milestone_key, action, *discriminators)

    def _return_urls(self, input: CreateCheckoutInput) -> tuple[str, str]:
        """Success and cancel URLs: the client's portal link, fixed by the session's expiry so a
        retried activity sends byte-identical parameters with its idempotency key."""
        link = self._links.url(input.deal_id, now=input.expires_at)
        return with_query(link, paid="1"), with_query(link, checkout="cancelled")

    @activity.defn
    @heartbeating
    async def create_checkout_session(self, input: CreateCheckoutInput) -> CheckoutSession:
        client = self._stripe
        success_url, cancel_url = self._return_urls(input)
        customer = await self._client_customer(input)
        metadata = {
            "deal_id": input.deal_id,
            "milestone_key": input.milestone_key,
            "generation": str(input.generation),
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": input.currency.lower(),
                        "unit_amount": input.amount,
                        "product_data": {"name": input.title},
                    },
                }
            ],
            "customer": customer,
            "client_reference_id": f"{input.deal_id}:{input.milestone_key}",
            "metadata": metadata,
            "payment_intent_data": {
                "capture_method": input.capture_method.value,
                "metadata": metadata,
                "transfer_group": f"{input.deal_id}:{input.milestone_key}",
            },
            "expires_at": int(input.expires_at.timestamp()),
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if input.payment_method_types is not None:
            params["payment_method_types"] = input.payment_method_types
        key = self._key(input.milestone_key, "checkout", f"g{input.generation}")
        with stripe_errors():
            session = await client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": key}
            )
        if not session.url:
            raise ApplicationError(
                f"Stripe created Checkout Session {session.id} without a URL",
                type=STRIPE_INVALID_REQUEST,
                non_retryable=True,
            )
        return CheckoutSession(
            session_id=session.id,
            url=session.url,
            expires_at=timestamp(session.expires_at),
            livemode=session.livemode,
        )

    async def _client_customer(self, input: CreateCheckoutInput) -> str:
        """The client's Customer: the oldest one dealflow made for the email, else a new one.

        Two deals of one client may both find none and both create one. Each re-lists after
        creating and keeps the oldest, deleting its own if it lost, so they settle on one: the
        Customer made first is already listed when the later one re-lists (Stripe's list, unlike
        its search, reads what was written; same-second creations are ordered by its list).
        An attempt that dies between creating and deleting leaves an extra Customer no session
        names; lookups keep taking the oldest, so it stays unused.
        """
        client = client_identity(input.client_email)
        found = await self._oldest_client_customer(client)
        if found is not None:
            return found
        digest = hashlib.sha256(client.encode()).hexdigest()[:16]
        key = self._key(input.milestone_key, "customer", f"g{input.generation}", digest)
        with stripe_errors():
            created = await self._stripe.v1.customers.create_async(
                {"email": client, "metadata": {CLIENT_METADATA: client}},
                {"idempotency_key": key},
            )
        oldest = await self._oldest_client_customer(client)
        if oldest is None or oldest == created.id:
            return created.id
        await self._delete_customer(created.id)
        return oldest

    async def _oldest_client_customer(self, client: str) -> str | None:
        customers = self._stripe.v1.customers
        oldest = None
        with stripe_errors():
            listed = await customers.list_async({"email": client, "limit": 100})
            async for customer in listed.auto_paging_iter():
                metadata = customer.metadata.to_dict() if customer.metadata else {}
                if metadata.get(CLIENT_METADATA) == client:
                    oldest = customer.id
        return oldest

    async def _delete_customer(self, customer_id: str) -> None:
        """Delete a Customer that lost the race; one an earlier attempt deleted is done."""
        with stripe_errors():
            try:
                await self._stripe.v1.customers.delete_async(customer_id)
            except stripe.InvalidRequestError as error:
                if error.code != "resource_missing":
                    raise

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

    @activity.defn
    @heartbeating
    async def expire_checkout_session(self, input: ExpireCheckoutInput) -> CheckoutSessionState:
        """Expire a superseded session. Already expired or already complete: its state, no error."""
        client = self._stripe
        sessions = client.v1.checkout.sessions
        with stripe_errors():
            session = await sessions.retrieve_async(input.session_id)
            if session.status != "open":
                return session_state(session)
            key = self._key(input.milestone_key, "expire", input.session_id)
            try:
                session = await sessions.expire_async(
                    input.session_id, options={"idempotency_key": key}
                )
            except stripe.InvalidRequestError:
                # Paid or expired between our read and the expire: report what it is now.
                session = await sessions.retrieve_async(input.session_id)
                if session.status == "open":
                    raise
        return session_state(session)

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
            refund = await client.v1.refunds.create_async(params, {"idempotency_key": key})
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
            transfer = await client.v1.transfers.create_async(params, {"idempotency_key": key})
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
        with stripe_errors():
            reversal = await self._stripe.v1.transfers.reversals.create_async(
                input.transfer_id, params, {"idempotency_key": key}
            )
        return TransferReversalResult(
            reversal_id=reversal.id, amount=reversal.amount, currency=reversal.currency
        )

    @activity.defn
    @heartbeating
    async def submit_dispute_evidence(self, input: SubmitEvidenceInput) -> DisputeState:
        """Answer a chargeback: the deal's evidence, submitted to the bank at once. A dispute
        an earlier attempt answered already (or one no longer open to an answer) is read and
        returned as it is; Stripe's refusal then is no failure of this one."""
        disputes = self._stripe.v1.disputes
        params: dict[str, Any] = {
            "evidence": input.evidence.fields(),
            "metadata": {"deal_id": input.deal_id, "milestone_key": input.milestone_key},
            "submit": True,
        }
        key = self._key(input.milestone_key, "evidence", input.dispute_id)
        with stripe_errors():
            try:
                dispute = await disputes.update_async(
                    input.dispute_id, params, {"idempotency_key": key}
                )
            except stripe.InvalidRequestError as error:
                if error.http_status == 404:
                    raise
                dispute = await disputes.retrieve_async(input.dispute_id)
                if dispute.evidence_details.submission_count == 0:
                    raise
        return dispute_state(dispute)
