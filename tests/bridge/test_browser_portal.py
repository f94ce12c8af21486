"""A client in real headless Chromium: SOW email → sign → pay on the hosted checkout → approve.

Debian's Chromium (never a downloaded browser) driven by Playwright, against the whole stack:
the SOW mail is caught by the SMTP sink, the pay link is the sandbox's hosted checkout page,
and the vendor hands in work through the vendor API. Screenshots land in the test's tmp_path.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from dealflow.messages import MilestoneState
from devstack.stack import Stack
from tests.bridge_support import (
    FUNDED_STATES,
    eventually,
    mail_text,
    milestone,
    open_deal,
    portal_link_to,
    submit_deliverable,
    wait_for_status,
    wait_for_summary,
)
from tests.chromium import chromium

PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


class Shots:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    async def __call__(self, page: Page, name: str) -> None:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


async def test_client_signs_pays_and_approves_in_chromium(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    shots = Shots(tmp_path)
    link = await open_deal(stack, "browser-deal")
    context = await browser.new_context(viewport=PHONE, user_agent="Mozilla/5.0 (dealflow browser test)")
    page = await context.new_page()

    await page.goto(link)
    assert await page.inner_text("h1") == "Bridge test deal"
    assert await page.is_visible("#sow-sha256")
    await shots(page, "sow")

    await page.fill("#full_name", "Casey Client")
    await page.check("input[name=consent]")
    await page.click("#sign-form button[type=submit]")
    assert "Signed" in await page.inner_text("#result h1")
    await shots(page, "signed")

    await wait_for_summary(
        stack, "browser-deal", lambda s: milestone(s, "build").checkout_session_id is not None, what="a pay link"
    )
    await page.click("text=Back to your deal")
    await page.click("#pay-build")
    await page.wait_for_selector("#payment-form")
    await shots(page, "checkout")
    await page.fill("#cardNumber", "4242 4242 4242 4242")
    await page.fill("#cardExpiry", "12 / 34")
    await page.fill("#cardCvc", "123")
    await page.fill("#billingName", "Casey Client")
    await page.click("#submit")
    await page.wait_for_url(f"{stack.bridge_url}/portal/browser-deal?*")
    assert await page.is_visible("#paid-notice")
    await shots(page, "paid")

    await wait_for_summary(stack, "browser-deal", lambda s: milestone(s, "build").state in FUNDED_STATES, what="funding")
    await submit_deliverable(stack, "browser-deal", "build")
    await page.goto(link)
    assert await page.get_attribute("#milestone-build", "data-state") == MilestoneState.DELIVERED
    assert await page.is_visible("text=site.zip")
    await shots(page, "delivered")

    await page.click("#approve-build button[type=submit]")
    assert "Approved" in await page.inner_text("#result h1")
    await shots(page, "approved")
    approved = await wait_for_status(
        stack, "browser-deal",
        lambda s: milestone(s, "build").state in (MilestoneState.APPROVED, MilestoneState.RELEASED),
        what="approval",
    )
    assert approved.signature is not None
    assert approved.signature.user_agent == "Mozilla/5.0 (dealflow browser test)"
    await page.click("text=Back to your deal")
    assert await page.get_attribute("#milestone-build", "data-state") in ("approved", "released")
    await shots(page, "after-approval")
    await context.close()

    assert [p.name for p in shots.taken] == [
        "01-sow.png", "02-signed.png", "03-checkout.png", "04-paid.png",
        "05-delivered.png", "06-approved.png", "07-after-approval.png",
    ]
    assert all(p.stat().st_size > 1000 for p in shots.taken)


async def test_vendor_countersigns_on_their_own_link_in_chromium(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    shots = Shots(tmp_path)
    client_link = await open_deal(stack, "browser-countersign", signing_order=["client", "vendor"])
    context = await browser.new_context(viewport=PHONE, user_agent="Mozilla/5.0 (dealflow vendor test)")
    page = await context.new_page()
    await page.goto(client_link)
    await page.fill("#full_name", "Casey Client")
    await page.check("input[name=consent]")
    await page.click("#sign-form button[type=submit]")
    assert "The vendor signs next" in await page.inner_text("#result")

    await page.goto(await portal_link_to(stack, "browser-countersign", "vera@vendor.example"))
    assert "Signed by Casey Client for the client" in await page.inner_text("#signatures")
    assert "Vera Vendor" in await page.inner_text("label[for=full_name]")
    assert not await page.is_visible("#pay-build")
    await shots(page, "vendor-sow")
    await page.fill("#full_name", "Vera Vendor")
    await page.check("input[name=consent]")
    await page.click("#sign-form button[type=submit]")
    assert "Signed by every party" in await page.inner_text("#result")

    signed = await wait_for_status(
        stack, "browser-countersign", lambda s: s.certificate_sha256 is not None, what="the certificate"
    )
    await page.click("text=Back to your deal")
    assert await page.inner_text("#certificate-sha256") == signed.certificate_sha256
    assert "Signed by Vera Vendor for the vendor" in await page.inner_text("#signatures")
    assert not await page.is_visible("#sign-form")
    await shots(page, "countersigned")
    await context.close()
    assert signed.signatures[-1].user_agent == "Mozilla/5.0 (dealflow vendor test)"
    assert all(p.stat().st_size > 1000 for p in shots.taken)


async def test_client_reviews_a_change_order_side_by_side_and_signs_it_in_chromium(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    shots = Shots(tmp_path)
    link = await open_deal(stack, "browser-amend")
    context = await browser.new_context(viewport=PHONE, user_agent="Mozilla/5.0 (dealflow amendment test)")
    page = await context.new_page()
    await page.goto(link)
    await page.fill("#full_name", "Casey Client")
    await page.check("input[name=consent]")
    await page.click("#sign-form button[type=submit]")
    await wait_for_summary(stack, "browser-amend", lambda s: milestone(s, "build").state == MilestoneState.AWAITING_FUNDING, what="funding")
    terms = {
        "reason": "A smaller first milestone",
        "milestones": [
            {"key": "build", "title": "Build the site", "amount": 100000, "due_in_days": 10},
            {"key": "polish", "title": "Polish and hand over", "amount": 30000, "due_in_days": 20},
        ],
    }
    headers = {"Authorization": f"Bearer {stack.settings.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=headers) as admin:
        proposed = await admin.post("/api/deals/browser-amend/amendments", json=terms)
        assert proposed.status_code == 200, proposed.text

    await page.goto(link)
    assert "Change order: version 2" in await page.inner_text("#amendment")
    row = await page.inner_text("#terms-build")
    assert "USD 1,200.00" in row and "USD 1,000.00" in row
    assert await page.get_attribute("#terms-build", "class") == "changed"
    assert await page.get_attribute("#terms-polish", "class") == "same"
    assert await page.inner_text("#proposed-total") == "USD 1,300.00"
    await shots(page, "change-order")
    await page.fill("#amendment_name", "Casey Client")
    await page.check("#accept-amendment-form input[name=consent]")
    await page.click("#accept-amendment-form button[type=submit]")
    assert "Version 2 is in force" in await page.inner_text("#result")

    amended = await wait_for_status(stack, "browser-amend", lambda s: s.sow_version == 2, what="version 2")
    assert amended.signatures[-1].user_agent == "Mozilla/5.0 (dealflow amendment test)"
    await page.click("text=Back to your deal")
    assert "signed by Casey Client" in await page.inner_text("#version-2")
    await page.click("#version-1 a")
    assert "is superseded by version 2" in await page.inner_text("#version-notice")
    await shots(page, "superseded")
    await wait_for_summary(
        stack, "browser-amend", lambda s: milestone(s, "build").checkout_session_id is not None and s.milestones[0].amount == 100000,
        what="a payment link for the new amount",
    )
    await context.close()
    assert all(p.stat().st_size > 1000 for p in shots.taken)


async def _access_code_mails(stack: Stack, count: int) -> list[EmailMessage]:
    assert stack.mail is not None
    mail = stack.mail

    async def mailed() -> list[EmailMessage] | None:
        found = [m for m in mail.messages if m["Subject"].startswith("Your access code")]
        return found if len(found) >= count else None

    return await eventually(mailed, what=f"{count} access code mail(s)")


def _code_in(mail: EmailMessage) -> str:
    match = re.search(r"^\s+(\d{6})\s*$", mail_text(mail), re.MULTILINE)
    assert match, mail_text(mail)
    return match.group(1)


async def test_a_client_signs_with_the_access_code_mailed_apart_after_a_lock_and_a_resend(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    """Above policy.access_code_above the sign form asks for the code of the second mail; wrong
    codes lock it, the operator's resend (admin API) sends a new one, and that one signs."""
    shots = Shots(tmp_path)
    link = await open_deal(stack, "coded-deal", policy={"access_code_above": 100000, "access_code_attempts": 2})
    assert stack.mail is not None
    [first_mail] = await _access_code_mails(stack, 1)
    first = _code_in(first_mail)
    assert "/portal/" not in mail_text(first_mail)  # the code and the link travel apart
    sow_mail = await stack.mail.wait_for(lambda m: "Statement of work to sign" in m["Subject"])
    assert first not in mail_text(sow_mail)
    wrong = "000000" if first != "000000" else "111111"

    page = await (await browser.new_context(viewport=PHONE)).new_page()
    await page.goto(link)
    assert await page.is_visible("#access_code")
    await shots(page, "asks-for-code")
    for left in ("1 try left", "signing is now locked"):
        await page.fill("#full_name", "Casey Client")
        await page.check("input[name=consent]")
        await page.fill("#access_code", wrong)
        await page.click("#sign-form button[type=submit]")
        assert f"Access code: wrong access code; {left}" in await page.inner_text("#result")
        await page.click("text=Back to your deal")
    assert await page.is_visible("#signing-locked") and not await page.is_visible("#sign-form")
    await shots(page, "locked")
    await stack.mail.wait_for(lambda m: m["Subject"].startswith("Signing locked") and m["To"] != "casey@client.example")

    headers = {"Authorization": f"Bearer {stack.settings.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=headers) as http:
        resent = await http.post("/api/deals/coded-deal/access-code/resend")
    assert resent.status_code == 200, resent.text
    second = _code_in((await _access_code_mails(stack, 2))[1])

    await page.goto(link)
    assert "2 tries" not in await page.inner_text("#access-code-help")
    await page.fill("#full_name", "Casey Client")
    await page.check("input[name=consent]")
    await page.fill("#access_code", second)
    await page.click("#sign-form button[type=submit]")
    assert "Signed" in await page.inner_text("#result h1")
    await shots(page, "signed-with-code")

    status = await wait_for_status(stack, "coded-deal", lambda s: s.signature is not None, what="the signature")
    assert status.signature is not None and status.signature.access_code_checked
    sent = [e for e in status.timeline if e.kind == "access_code_sent"]
    assert [e.operator for e in sent] == [None, "admin"]
    assert first not in status.model_dump_json() and second not in status.model_dump_json()
