"""What every Stripe activity shares: the client, its timeouts, and the idempotency keys.

Every call carries an explicit Idempotency-Key made from the workflow id, the milestone, the
action and what distinguishes this call from its siblings (session generation, refund purpose,
payment intent), never the activity attempt: a retried activity must send the same key, so
Stripe answers the first result instead of moving money twice. The library's automatic keys
change on every activity attempt and would protect nothing.

Errors are classified for Temporal (activities/stripe_errors.py): a declined card, an invalid
request, a reused key and a bad key are non-retryable `ApplicationError`s the workflow handles;
rate limits, 5xx and network errors are retryable (after the library's own
`max_network_retries`). The client's timeouts and retries come from
dealflow.activity_timeouts.STRIPE, which also bounds an attempt; a read the workflow runs in its
own task (a local activity) gets a client with the shorter STRIPE_READ_IN_TASK.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict

import httpx
import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.stripe_errors import STRIPE_NOT_CONFIGURED
from dealflow.activity_timeouts import STRIPE, STRIPE_READ_IN_TASK, StripeTimeouts
from dealflow.links import PortalLinks
from dealflow.settings import is_offline_sandbox

_IDEMPOTENCY_KEY_MAX = 255


def idempotency_key(workflow_id: str, milestone_key: str, action: str, *discriminators: str) -> str:
    """`dealflow:<workflow>:<milestone>:<action>:<...>`, hashed when longer than Stripe allows."""
    key = ":".join(("dealflow", workflow_id, milestone_key, action, *discriminators))
    if len(key) <= _IDEMPOTENCY_KEY_MAX:
        return key
    return "dealflow:sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _stripe_client(
    api_key: str, api_base: str | None, timeouts: StripeTimeouts, max_network_retries: int
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=max_network_retries,
        http_client=stripe.HTTPXClient(timeout=httpx.Timeout(**asdict(timeouts.http))),
    )


class StripeCalls:
    """The Stripe client of the payment activities (none without an API key: each activity
    then fails, non-retryable, saying how to set one) and the key of the current call."""

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
        self._in_task_client: stripe.StripeClient | None = None
        #: Refund objects carry no `livemode`; the key says which money they moved.
        self._livemode = bool(api_key and api_key.startswith(("sk_live_", "rk_live_")))
        self._sandbox = is_offline_sandbox(api_base)
        if api_key:
            self._client = _stripe_client(api_key, api_base, STRIPE, max_network_retries)
            self._in_task_client = _stripe_client(
                api_key, api_base, STRIPE_READ_IN_TASK, STRIPE_READ_IN_TASK.max_network_retries
            )

    @property
    def _stripe(self) -> stripe.StripeClient:
        """The client for this attempt: the short-lived one inside a workflow task."""
        in_task = activity.in_activity() and activity.info().is_local
        client = self._in_task_client if in_task else self._client
        if client is None:
            raise ApplicationError(
                "STRIPE_API_KEY is not set, so dealflow cannot create payment links or move money. "
                "Set STRIPE_API_KEY (a Stripe test key, or run `dealflow sandbox` and use its key "
                "and STRIPE_API_BASE).",
                type=STRIPE_NOT_CONFIGURED,
                non_retryable=True,
            )
        return client

    def _key(self, milestone_key: str, action: str, *discriminators: str) -> str:
        return idempotency_key(activity.info().workflow_id, milestone_key, action, *discriminators)
