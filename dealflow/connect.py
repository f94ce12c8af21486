"""Stripe Connect onboarding of vendors: their connected account, the hosted onboarding link
Stripe completes it through, and what an account object says about receiving transfers. The CLI
and the admin API onboard; the payments activity and the bridge's `account.updated` read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import stripe
from pydantic import BaseModel

from dealflow.links import PortalLinks
from dealflow.messages import PayeeAccount
from dealflow.vendors import get_vendor, read_time, record_account, set_stripe_account


def payee_account(account: Mapping[str, Any]) -> PayeeAccount:
    """An account object (a Stripe answer or an event's `data.object`, as a dict)."""
    requirements = account.get("requirements") or {}
    due = [*(requirements.get("past_due") or []), *(requirements.get("currently_due") or [])]
    return PayeeAccount(
        account_id=account["id"],
        transfers_active=(account.get("capabilities") or {}).get("transfers") == "active",
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        details_submitted=bool(account.get("details_submitted")),
        requirements_due=list(dict.fromkeys(due)),
        disabled_reason=requirements.get("disabled_reason"),
    )


async def create_connected_account(
    client: stripe.StripeClient, *, email: str, vendor_id: str, country: str = "US"
) -> PayeeAccount:
    """An Express account that may receive transfers once the vendor completes onboarding.
    The vendor id is the idempotency key: a retried call makes no second account."""
    account = await client.v1.accounts.create_async(
        {
            "type": "express",
            "country": country,
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"vendor_id": vendor_id},
        },
        {"idempotency_key": f"dealflow-vendor-account-{vendor_id}"},
    )
    return payee_account(account.to_dict())


async def onboarding_link(
    client: stripe.StripeClient, account_id: str, *, refresh_url: str, return_url: str
) -> str:
    """The URL of Stripe's hosted onboarding for the account (short-lived; make a new one when
    it lapses: Stripe sends the vendor to `refresh_url` then)."""
    link = await client.v1.account_links.create_async(
        {
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": refresh_url,
            "return_url": return_url,
        }
    )
    return link.url


async def retrieve_payee(client: stripe.StripeClient, account_id: str) -> PayeeAccount:
    return payee_account((await client.v1.accounts.retrieve_async(account_id)).to_dict())


class Onboarding(BaseModel):
    vendor_id: str
    account_id: str
    #: Stripe's hosted onboarding page; it lapses within minutes, so make a new one when needed.
    onboarding_url: str


async def onboard_vendor(
    pool: asyncpg.Pool, client: stripe.StripeClient, links: PortalLinks, vendor_id: str
) -> Onboarding:
    """The vendor's connected account (made now if they have none) and a fresh onboarding link;
    Stripe sends them back to their vendor page, or to a new link if this one lapsed."""
    vendor = await get_vendor(pool, vendor_id)
    account_id = vendor.stripe_account
    if account_id is None:
        account = await create_connected_account(client, email=vendor.email, vendor_id=vendor_id)
        await set_stripe_account(pool, vendor_id, account)
        account_id = account.account_id
    else:  # what the vendor's page shows is Stripe's word of now
        await record_account(pool, await retrieve_payee(client, account_id), read_time())
    url = await onboarding_link(
        client,
        account_id,
        refresh_url=links.vendor_page(vendor_id, page="/onboarding"),
        return_url=links.vendor_page(vendor_id),
    )
    return Onboarding(vendor_id=vendor_id, account_id=account_id, onboarding_url=url)


def stripe_client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    """A client for onboarding calls (a person waits on them: a few retries, then the error)."""
    return stripe.StripeClient(
        api_key, base_addresses={"api": api_base} if api_base else None, max_network_retries=2
    )
