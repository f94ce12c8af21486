"""Connect onboarding on the sandbox, as on Stripe: a new account cannot receive transfers, its
account link's hosted page completes it, and `account.updated` says so."""

from __future__ import annotations

import httpx
import pytest
import stripe

from stripe_sandbox.accounts import ACCOUNT_LINK_SECONDS, ONBOARDING_DUE
from tests.stripe_contract.harness import running_sandbox, session_params

RETURN_URL = "https://platform.example/vendor/ven_1?token=t"
REFRESH_URL = "https://platform.example/vendor/ven_1/onboarding?token=t"


async def test_an_account_is_onboarded_through_its_link_and_then_receives_transfers() -> None:
    async with running_sandbox() as sandbox:
        client = sandbox.client()
        account = await client.v1.accounts.create_async(
            {"type": "express", "email": "vera@vendor.example", "capabilities": {"transfers": {"requested": True}}}
        )
        assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (False, False, False)
        assert account.capabilities.to_dict() == {"transfers": "inactive"}
        assert account.requirements.currently_due == ONBOARDING_DUE
        assert account.requirements.disabled_reason == "requirements.past_due"

        session = await client.v1.checkout.sessions.create_async(session_params(5000))
        paid = await sandbox.control.pay(session.id)
        charge = paid["payment_intent"]["latest_charge"]
        transfer = {"amount": 4000, "currency": "usd", "destination": account.id, "source_transaction": charge}
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.transfers.create_async(transfer)
        assert refused.value.code == "insufficient_capabilities_for_transfer"

        link = await client.v1.account_links.create_async(
            {"account": account.id, "type": "account_onboarding", "refresh_url": REFRESH_URL, "return_url": RETURN_URL}
        )
        assert link.object == "account_link" and link.expires_at == link.created + ACCOUNT_LINK_SECONDS
        async with httpx.AsyncClient() as browser:
            page = await browser.get(link.url)
            assert page.status_code == 200 and "tos_acceptance.date" in page.text
            done = await browser.post(link.url)
            assert (done.status_code, done.headers["location"]) == (303, RETURN_URL)
            used = await browser.get(link.url)
            assert (used.status_code, used.headers["location"]) == (303, REFRESH_URL)

        onboarded = await client.v1.accounts.retrieve_async(account.id)
        assert onboarded.capabilities.transfers == "active" and onboarded.payouts_enabled
        assert onboarded.requirements.currently_due == []
        event = await sandbox.receiver.wait_for(account.id, "account.updated")
        assert event.data.previous_attributes["capabilities"].to_dict() == {"transfers": "inactive"}
        assert (await client.v1.transfers.create_async(transfer)).destination == account.id


async def test_an_account_link_names_an_account_that_exists() -> None:
    async with running_sandbox() as sandbox:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await sandbox.client().v1.account_links.create_async(
                {"account": "acct_1Missing", "type": "account_onboarding"}
            )
        assert refused.value.param == "account"
        async with httpx.AsyncClient() as browser:
            assert (await browser.get(f"{sandbox.url}/connect/onboarding/acctlink_nothing")).status_code == 404
