"""Vendors as accounts through the admin and vendor APIs, on the whole stack: a vendor's key
reaches only their deals (another vendor's is a 404 that changes nothing), rotated and revoked
keys are 401s, the vendor page lists their deals, and Connect onboarding completes on the
sandbox's hosted page, whose `account.updated` the bridge records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from activities.ledger import insert_payment, upsert_snapshot
from dealflow.messages import DealSnapshot, DealStage, MilestoneState, PaymentKind, PaymentRecord
from dealflow.vendors import NewVendor
from dealflow.vendors import add_vendor as add_vendor_record
from devstack.stack import Stack
from tests.bridge_support import (
    BROWSER_HEADERS,
    VENDOR_DELIVERABLE,
    bridge_settings,
    deal_status,
    eventually,
    milestone,
    open_deal,
    pay_milestone,
    sign_in_portal,
)


@pytest.fixture
async def http(stack: Stack):
    admin = {"Authorization": f"Bearer {stack.settings.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers={**BROWSER_HEADERS, **admin}) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def add_vendor(http: httpx.AsyncClient, name: str, email: str) -> dict:
    added = await http.post("/api/vendors", json={"name": name, "email": email})
    assert added.status_code == 201, added.text
    return added.json()


def vendor_of(added: dict) -> dict:
    record = added["vendor"]
    return {"name": record["name"], "email": record["email"], "vendor_id": record["vendor_id"]}


def deliverables(deal_id: str) -> str:
    return f"/api/vendor/deals/{deal_id}/milestones/build/deliverables"


async def test_a_vendor_key_reaches_only_its_vendors_deals(stack: Stack, http: httpx.AsyncClient) -> None:
    vera = await add_vendor(http, "Vera Vendor", "vera@vendor.example")
    bob = await add_vendor(http, "Bob Builder", "bob@builder.example")
    assert vera["key"]["api_key"].startswith("dfv_") and vera["vendor"]["active_keys"] == 1
    await open_deal(stack, "vera-deal", vendor=vendor_of(vera))
    await sign_in_portal(http, await open_deal(stack, "bob-deal", vendor=vendor_of(bob)))
    await pay_milestone(stack, "bob-deal", "build")
    as_vera, as_bob = bearer(vera["key"]["api_key"]), bearer(bob["key"]["api_key"])

    missing = await http.get("/api/vendor/deals/no-such-deal", headers=as_vera)
    others = await http.get("/api/vendor/deals/bob-deal", headers=as_vera)
    assert missing.status_code == others.status_code == 404
    assert others.json()["error"] == {**missing.json()["error"], "message": "no deal 'bob-deal'"}
    submitted = await http.post(deliverables("bob-deal"), json=VENDOR_DELIVERABLE, headers=as_vera)
    assert submitted.status_code == 404, submitted.text
    countersigned = await http.post(
        "/api/vendor/deals/bob-deal/signature", json={"signer_name": "Vera Vendor", "consent": True}, headers=as_vera
    )
    terms = {"reason": "cheaper", "milestones": [{"key": "build", "title": "Build", "amount": 1, "due_in_days": 1}]}
    amended = await http.post("/api/vendor/deals/bob-deal/amendments", json=terms, headers=as_vera)
    assert countersigned.status_code == amended.status_code == 404, (countersigned.text, amended.text)
    bobs = await deal_status(stack, "bob-deal")
    build = milestone(bobs, "build")
    assert (build.state, build.deliverables) == (MilestoneState.IN_PROGRESS, [])
    assert [s.party for s in bobs.signatures] == ["client"] and len(bobs.sow_versions) == 1

    own = await http.post(deliverables("bob-deal"), json=VENDOR_DELIVERABLE, headers=as_bob)
    assert own.status_code == 200, own.text
    bobs_page = urlsplit(bob["page_url"])
    due = await http.get(f"{bobs_page.path}?{bobs_page.query}")
    assert 'class="due-item" data-deal="bob-deal"' in due.text and "the client reviews" in due.text
    assert "vera-deal" not in due.text
    assert (await http.get("/api/vendor/deals/vera-deal", headers=as_vera)).json()["vendor_id"] == vera["vendor"]["vendor_id"]

    async def veras_deals() -> list[str]:
        listed = await http.get("/api/vendor/deals", headers=as_vera)
        return [d["deal_id"] for d in listed.json()]

    assert await eventually(veras_deals, what="vera's deal in the read model") == ["vera-deal"]

    vera_id, bob_id = vera["vendor"]["vendor_id"], bob["vendor"]["vendor_id"]
    rotated = await http.post(f"/api/vendors/{vera_id}/keys")
    assert rotated.status_code == 200
    old = await http.get("/api/vendor/deals/vera-deal", headers=as_vera)
    assert old.status_code == 401 and old.json()["error"]["code"] == "invalid_token"
    assert (await http.get("/api/vendor/deals/vera-deal", headers=bearer(rotated.json()["api_key"]))).status_code == 200

    revoked = await http.delete(f"/api/vendors/{bob_id}/keys")
    assert revoked.json() == {"vendor_id": bob_id, "revoked_keys": 1}
    after = await http.post(deliverables("bob-deal"), json=VENDOR_DELIVERABLE, headers=as_bob)
    assert after.status_code == 401
    listed = {v["vendor_id"]: v for v in (await http.get("/api/vendors")).json()}
    assert listed[bob_id]["active_keys"] == 0 and listed[bob_id]["last_used_at"] is not None
    assert (await http.get("/api/vendors/ven_nobody")).status_code == 404
    twice = await http.post("/api/vendors", json={"name": "Vera Again", "email": "VERA@vendor.example"})
    assert twice.status_code == 422 and twice.json()["error"]["field"] == "email"


async def test_the_vendor_page_and_connect_onboarding(stack: Stack, http: httpx.AsyncClient) -> None:
    vera = await add_vendor(http, "Vera Vendor", "vera@vendor.example")
    vendor_id = vera["vendor"]["vendor_id"]
    await open_deal(stack, "paged-deal", vendor=vendor_of(vera))
    page_url = vera["page_url"]
    page_path = urlsplit(page_url).path + "?" + urlsplit(page_url).query

    async def listed() -> httpx.Response | None:
        page = await http.get(page_path)
        return page if 'data-deal="paged-deal"' in page.text else None

    page = await eventually(listed, what="the deal on the vendor page")
    assert page.status_code == 200 and 'data-ready="none"' in page.text
    other = await add_vendor(http, "Bob Builder", "bob@builder.example")
    borrowed = await http.get(page_path.replace(vendor_id, other["vendor"]["vendor_id"]))
    assert borrowed.status_code == 403 and "paged-deal" not in borrowed.text

    onboarded = await http.post(f"/api/vendors/{vendor_id}/onboard")
    assert onboarded.status_code == 200, onboarded.text
    account_id = onboarded.json()["account_id"]
    page = await http.get(page_path)
    assert 'data-ready="no"' in page.text and "external_account" in page.text
    start = await http.get(page_path.replace(f"/vendor/{vendor_id}?", f"/vendor/{vendor_id}/onboarding?"))
    assert start.status_code == 303 and "/connect/onboarding/" in start.headers["location"]
    async with httpx.AsyncClient() as browser:
        done = await browser.post(start.headers["location"])
    assert done.status_code == 303 and urlsplit(done.headers["location"]).path == f"/vendor/{vendor_id}"

    async def ready() -> bool:
        record = (await http.get(f"/api/vendors/{vendor_id}")).json()
        return record["stripe_account"] == account_id and record["transfers_active"] is True

    await eventually(ready, what="account.updated recorded on the vendor")
    assert 'data-ready="yes"' in (await http.get(page_path)).text


async def test_the_vendor_page_lists_their_payouts_from_the_ledger(
    bridge_url: str, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The ledger's rows of two vendors' deals: each page shows its own deal and payouts only."""
    vera, _ = await add_vendor_record(db_pool, NewVendor(name="Vera Vendor", email="vera@vendor.example"))
    bob, _ = await add_vendor_record(db_pool, NewVendor(name="Bob Builder", email="bob@builder.example"))
    now = datetime.now(UTC)
    async with db_pool.acquire() as conn:
        for deal_id, vendor in (("vera-paid", vera), ("bob-paid", bob)):
            await upsert_snapshot(
                conn,
                DealSnapshot(
                    deal_id=deal_id, workflow_id=f"deal-{deal_id}", title=f"Deal of {vendor.name}",
                    client_email="ada@client.example", vendor_email=vendor.email, vendor_id=vendor.vendor_id,
                    currency="usd", stage=DealStage.COMPLETED, amount_total=150_000, funded=0,
                    released=150_000, refunded=0, livemode=False, demo=False, updated_at=now,
                ),
            )  # fmt: skip
            await insert_payment(
                conn,
                PaymentRecord(
                    stripe_id=f"tr_{deal_id}", deal_id=deal_id, milestone_key="build",
                    kind=PaymentKind.TRANSFER, amount=146_250, currency="usd", livemode=False,
                    sandbox=True, status="paid", occurred_at=now,
                ),
            )  # fmt: skip
    links = bridge_settings(tmp_path, "postgresql://unused").portal_links()
    page = urlsplit(links.vendor_page(vera.vendor_id, now=now))
    async with httpx.AsyncClient(base_url=bridge_url) as http:
        shown = await http.get(f"{page.path}?{page.query}")
    assert shown.status_code == 200
    assert 'class="payout" data-deal="vera-paid"' in shown.text and "Stripe transfer tr_vera-paid" in shown.text
    assert "USD 1,462.50" in shown.text and "Nothing is due." in shown.text
    assert "bob-paid" not in shown.text
