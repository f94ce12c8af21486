"""A vendor in real headless Chromium: their page says their Stripe account cannot receive
payouts yet, its button leads through the sandbox's hosted Connect onboarding and back, and once
`account.updated` reached the bridge the page says the account receives their payouts."""

from __future__ import annotations

from pathlib import Path

import httpx

from devstack.stack import Stack
from tests.bridge_support import open_deal
from tests.chromium import chromium


async def test_vendor_finishes_stripe_onboarding_from_their_page(stack: Stack, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {stack.settings.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=admin) as http:
        added = (await http.post("/api/vendors", json={"name": "Vera Vendor", "email": "vera@vendor.example"})).json()
        vendor_id = added["vendor"]["vendor_id"]
        vendor = {"name": "Vera Vendor", "email": "vera@vendor.example", "vendor_id": vendor_id}
        await open_deal(stack, "chromium-vendor-deal", vendor=vendor)
        account_id = (await http.post(f"/api/vendors/{vendor_id}/onboard")).json()["account_id"]

    async with chromium() as browser:
        page = await (await browser.new_context(user_agent="Mozilla/5.0 (dealflow vendor test)")).new_page()
        await page.goto(added["page_url"])
        assert await page.inner_text("h1") == "Vera Vendor"
        assert await page.get_attribute("#stripe-account", "data-ready") == "no"
        assert await page.is_visible('tr.deal[data-deal="chromium-vendor-deal"]')
        await page.screenshot(path=str(tmp_path / "01-not-ready.png"), full_page=True)

        await page.click("#onboard")
        await page.wait_for_selector("#complete-onboarding")
        assert account_id in await page.inner_text("h1")
        await page.click("#complete-onboarding")
        await page.wait_for_url(f"{stack.bridge_url}/vendor/{vendor_id}?token=*")
        for _ in range(100):  # account.updated reaches the bridge as a webhook, soon after
            if await page.get_attribute("#stripe-account", "data-ready") == "yes":
                break
            await page.wait_for_timeout(200)
            await page.reload()
        assert await page.get_attribute("#stripe-account", "data-ready") == "yes"
        assert account_id in await page.inner_text("#stripe-account")
        await page.screenshot(path=str(tmp_path / "02-ready.png"), full_page=True)
