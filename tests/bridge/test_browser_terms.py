"""A deal's terms in real headless Chromium: the deposit and its late fee shown before signing,
the fee announced while the deposit is unpaid, then added (a new link for the new amount, in the
mail too), paid on the sandbox's hosted checkout and released on funding without a deliverable."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser

from dealflow.messages import MilestoneState
from devstack.stack import Stack
from tests.bridge_support import mail_text, milestone, open_deal, wait_for_status, wait_for_summary
from tests.chromium import chromium

DEAL = "terms-deal"
MILESTONES = [
    {"key": "deposit", "title": "Deposit", "amount": 30000, "deposit": True},
    {"key": "build", "title": "Build the site", "amount": 120000, "due_in_days": 10},
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def test_a_late_deposit_is_announced_charged_paid_and_released(stack: Stack, browser: Browser) -> None:
    link = await open_deal(
        stack, DEAL, milestones=MILESTONES, policy={"late_fee": {"fixed": 2500, "grace": "20s"}}
    )
    page = await browser.new_page()
    await page.goto(link)
    deposit = page.locator("#milestone-deposit")
    assert "deposit, due at signature, no deliverable" in await deposit.inner_text()
    assert await page.inner_text("#late-fee-terms-deposit") == (
        "Late fee if unpaid: USD 25.00, once, 20 seconds after the due date."
    )

    await page.fill("#full_name", "Casey Client")
    await page.check("input[name=consent]")
    await page.click("#sign-form button[type=submit]")
    assert "Signed" in await page.inner_text("#result h1")
    await wait_for_summary(
        stack, DEAL, lambda s: milestone(s, "deposit").checkout_session_id is not None, what="a pay link"
    )
    await page.goto(link)
    assert "a late fee of USD 25.00 is added" in await page.inner_text("#next-late-fee-deposit")
    assert await page.inner_text("#pay-deposit") == "Pay USD 300.00"

    charged = await wait_for_status(
        stack, DEAL, lambda s: milestone(s, "deposit").late_fee == 2500, what="the late fee", timeout=60
    )
    assert charged.money.late_fees == 2500
    assert stack.mail is not None
    relinked = await stack.mail.wait_for(lambda m: "This includes late fees of USD 25.00." in mail_text(m))
    assert "Pay USD 325.00" in mail_text(relinked)

    await page.goto(link)
    assert await page.inner_text("#late-fee-deposit") == "Late fees added: USD 25.00; now due USD 325.00."
    assert await page.inner_text("#money-late-fees dd") == "USD 25.00"
    assert not await page.is_visible("#next-late-fee-deposit")
    await page.click("#pay-deposit")
    await page.wait_for_selector("#payment-form")
    await page.fill("#cardNumber", "4242 4242 4242 4242")
    await page.fill("#cardExpiry", "12 / 34")
    await page.fill("#cardCvc", "123")
    await page.fill("#billingName", "Casey Client")
    await page.click("#submit")
    await page.wait_for_url(f"{stack.bridge_url}/portal/{DEAL}?*")

    released = await wait_for_status(
        stack, DEAL, lambda s: milestone(s, "deposit").state is MilestoneState.RELEASED, what="the deposit released"
    )
    assert milestone(released, "deposit").released == 32500
    await page.goto(link)
    assert await page.get_attribute("#milestone-deposit", "data-state") == "released"

    headers = {"Authorization": f"Bearer {stack.settings.vendor_token}"}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=headers) as http:
        refused = await http.post(
            f"/api/vendor/deals/{DEAL}/milestones/deposit/deliverables",
            json={"summary": "nothing to hand in", "artifacts": []},
        )
    assert refused.status_code == 409, refused.text
    assert "'deposit' is a deposit; it needs no deliverable" in refused.text
