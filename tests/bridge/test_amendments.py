"""Change orders on the whole stack: proposed through the vendor and admin APIs (and the CLI's
signal), shown side by side on the client's portal, accepted with a signature or declined;
links to a superseded version say so."""

from __future__ import annotations

import httpx
import pytest

from dealflow.messages import DealStage, MilestoneState
from devstack.stack import Stack
from tests.bridge.test_countersign import dealflow_cli
from tests.bridge_support import (
    BROWSER_HEADERS,
    eventually,
    milestone,
    open_deal,
    page_forms,
    pay_milestone,
    post_form,
    sign_in_portal,
    wait_for_status,
    wait_for_summary,
)

BUILD = {"key": "build", "title": "Build the site", "amount": 120000, "due_in_days": 10}
POLISH = {"key": "polish", "title": "Polish and hand over", "amount": 30000, "due_in_days": 20}


@pytest.fixture
async def http(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=BROWSER_HEADERS) as client:
        yield client


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_change_order_from_the_vendor_is_accepted_on_the_portal(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    link = await open_deal(stack, "amend-portal")
    await sign_in_portal(http, link)
    await pay_milestone(stack, "amend-portal", "build")
    new_terms = {
        "reason": "The client asked for a blog",
        "milestones": [BUILD, {**POLISH, "amount": 45000}, {"key": "blog", "title": "Blog", "amount": 20000, "due_in_days": 30}],
        "sow": "Vera will build a small website for Casey: two pages and a blog, handed over as a zip file.",
    }
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=bearer(stack.settings.vendor_token)) as vendor:
        locked = await vendor.post(
            "/api/vendor/deals/amend-portal/amendments",
            json={**new_terms, "milestones": [{**BUILD, "amount": 1}, POLISH]},
        )
        assert locked.status_code == 409
        assert "an amendment cannot change or remove it" in locked.text
        bad = await vendor.post("/api/vendor/deals/amend-portal/amendments", json={**new_terms, "proposed_by": "operator"})
        assert bad.status_code == 422
        proposed = await vendor.post("/api/vendor/deals/amend-portal/amendments", json=new_terms)
        assert proposed.status_code == 200, proposed.text
        assert proposed.json()["message"] == "Version 2 proposed; the client is asked to accept or decline it."

    page = await http.get(link)
    assert "Change order: version 2" in page.text
    assert "Proposed by the vendor" in page.text
    assert "USD 450.00" in page.text and "USD 300.00" in page.text
    assert "two pages and a blog" in page.text
    status = await wait_for_status(stack, "amend-portal", lambda s: len(s.sow_versions) == 2, what="version 2")
    assert status.sow_versions[1].sow_sha256 in page.text

    no_consent = await post_form(http, page, "accept-amendment-form", full_name="Casey Client")
    assert no_consent.status_code == 422
    accepted = await post_form(http, page, "accept-amendment-form", full_name="Casey Client", consent="true")
    assert accepted.status_code == 200, accepted.text
    assert "Version 2 is in force" in accepted.text
    status = await wait_for_status(stack, "amend-portal", lambda s: s.sow_version == 2, what="version 2 in force")
    assert status.money.contract == 120000 + 45000 + 20000
    assert [(s.sow_version, s.signer_name, s.ip) for s in status.signatures] == [
        (1, "Casey Client", "127.0.0.1"), (2, "Casey Client", "127.0.0.1")
    ]

    fresh = await http.get(link)
    assert "accept-amendment-form" not in page_forms(fresh.text)
    assert "signed by Casey Client for the client" in fresh.text
    old = await http.get(f"{link}&version=1")
    assert old.status_code == 200
    assert "Version 1" in old.text and "is superseded by version 2" in old.text
    assert "two pages, handed over" in old.text
    again = await post_form(http, page, "accept-amendment-form", full_name="Casey Client", consent="true", nonce="n" * 24)
    assert again.status_code == 409
    assert "version 2 is current; no answer is awaited" in again.text
    assert (await http.get(f"{link}&version=9")).status_code == 404


    async def kept() -> list[str]:
        rows = await stack.pool.fetch(
            """SELECT detail->'version'->>'sow' AS sow FROM deal_events
               WHERE deal_id = 'amend-portal' AND kind = 'amendment_proposed'"""
        )
        return [row["sow"] for row in rows]

    assert await eventually(kept, what="version 2 in the ledger") == [new_terms["sow"]]


async def test_the_operator_proposes_and_the_client_declines(stack: Stack, http: httpx.AsyncClient) -> None:
    link = await open_deal(stack, "amend-decline")
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=bearer(stack.settings.admin_token)) as admin:
        early = await admin.post(
            "/api/deals/amend-decline/amendments", json={"reason": "cheaper", "milestones": [BUILD]}
        )
        assert early.status_code == 409
        assert "not signed yet" in early.text
        await sign_in_portal(http, link)
        await wait_for_summary(stack, "amend-decline", lambda s: s.stage == DealStage.AWAITING_FUNDING, what="funding")
        first = await admin.post("/api/deals/amend-decline/amendments", json={"reason": "cheaper", "milestones": [BUILD]})
        assert first.status_code == 200, first.text
    page_of_v2 = await http.get(link)
    sent = await dealflow_cli(
        stack, "signal", "amend-decline", "propose_amendment", "--operator", "olga",
        "--data", '{"reason": "even cheaper", "milestones": [{"key": "build", "title": "Build the site", "amount": 100000, "due_in_days": 10}]}',
    )
    assert sent.returncode == 0, sent.stderr
    status = await wait_for_status(stack, "amend-decline", lambda s: len(s.sow_versions) == 3, what="version 3")
    assert [(v.number, v.state, v.proposed_by) for v in status.sow_versions] == [
        (1, "current", None), (2, "superseded", "operator"), (3, "proposed", "operator")
    ]
    # Each proposal names its operator: the admin token's, and the CLI's --operator.
    proposals = [e.operator for e in status.timeline if e.kind == "amendment_proposed"]
    assert proposals == ["admin", "olga"]
    stale = await post_form(http, page_of_v2, "accept-amendment-form", full_name="Casey Client", consent="true")
    assert stale.status_code == 409
    assert "version 2 is superseded by version 3" in stale.text
    superseded = await http.get(f"{link}&version=2")
    assert "is superseded by version 3" in superseded.text

    page = await http.get(link)
    declined = await post_form(http, page, "decline-amendment-form", reason="no thanks")
    assert declined.status_code == 200, declined.text
    assert "Version 3 declined; version 1 stays in force." in declined.text
    status = await wait_for_status(stack, "amend-decline", lambda s: s.sow_versions[2].state == "declined", what="declined")
    assert status.sow_version == 1
    assert [m.amount for m in status.milestones] == [120000, 30000]
    assert milestone(status, "build").state == MilestoneState.AWAITING_FUNDING
    shown = await dealflow_cli(stack, "status", "amend-decline")
    assert "SOW version 3: declined, proposed by the operator: even cheaper" in shown.stdout
