"""Checkout Sessions: the client's payment link for a milestone, and its expiry when replaced.

Each client is one Stripe Customer, found by its email and created the first time, and every
Checkout Session names it: the client's payments are linked, and Stripe's receipts (when the
account's "Successful payments" emails are on) go to the Customer's address. dealflow mails its
own receipt, so it does not set `payment_intent_data.receipt_email`, which in live mode would
make Stripe send one regardless of the account's email settings.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.stripe_client import StripeCalls
from activities.stripe_errors import STRIPE_INVALID_REQUEST, stripe_errors
from activities.stripe_objects import session_state, timestamp
from dealflow.messages import (
    CheckoutSession,
    CheckoutSessionState,
    CreateCheckoutInput,
    ExpireCheckoutInput,
)

#: Customer metadata naming the client dealflow made it for (`client_identity` of the email).
CLIENT_METADATA = "dealflow_client"


def client_identity(email: str) -> str:
    """Who a client is: the email trimmed and lowercased, so `Ana@X.com` on one deal and
    `ana@x.com` on another share one Customer (Stripe's list filter on email is case-sensitive)."""
    return email.strip().lower()


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added to its query string (existing parameters kept)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class CheckoutActivities(StripeCalls):
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
