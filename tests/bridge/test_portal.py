"""The client portal on the whole stack: real dev server, worker, Postgres, sandbox and SMTP.

Each form is posted as a browser would (form-encoded, with the hidden fields of the page) and
the answers are the workflow's own: done, or refused with the validator's reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from dealflow.links import make_token
from dealflow.messages import DealStage, MilestoneState
from devstack.stack import Stack
from tests.bridge_support import (
    BROWSER_HEADERS,
    deal_status,
    link_token,
    milestone,
    open_deal,
    page_forms,
    pay_milestone,
    post_form,
    sign_in_portal,
    submit_deliverable,
    wait_for_status,
    wait_for_summary,
)


@pytest.fixture
async def http(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=BROWSER_HEADERS) as client:
        yield client


async def test_bad_links_get_a_403_page_that_reveals_nothing(stack: Stack, http: httpx.AsyncClient) -> None:
    link = await open_deal(stack, "portal-links")
    token = link_token(link)
    secret = stack.settings.secret_key or ""
    payload, _, mac = token.partition(".")
    expired = make_token(secret, "portal-links", datetime.now(UTC) - timedelta(seconds=1))
    other_deal = make_token(secret, "another-deal", datetime.now(UTC) + timedelta(days=1))
    for bad in (f"{payload}.{mac[:-2]}xx", payload, "", expired, other_deal, token + "a"):
        page = await http.get("/portal/portal-links", params={"token": bad})
        assert page.status_code == 403, bad
        assert "This link is not valid" in page.text
        for detail in ("Bridge test deal", "Casey", "Vera", "website", "1,200"):
            assert detail not in page.text
        assert page.headers["Referrer-Policy"] == "same-origin"
    ok = await http.get(urlsplit(link).path, params={"token": token})
    assert ok.status_code == 200
    status = await deal_status(stack, "portal-links")
    for shown in ("Bridge test deal", status.sow_sha256, "two pages, handed over", "USD 1,200.00", "Build the site"):
        assert shown in ok.text
    assert ok.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in ok.headers["Content-Security-Policy"]


async def test_forms_with_bad_link_csrf_origin_or_nonce_change_nothing(stack: Stack, http: httpx.AsyncClient) -> None:
    page = await http.get(await open_deal(stack, "portal-csrf"))
    other_page = await http.get(await open_deal(stack, "portal-csrf-other"))
    other_fields = page_forms(other_page.text)["sign-form"]["fields"]
    sign = {"full_name": "Casey Client", "consent": "true"}

    wrong_csrf = await post_form(http, page, "sign-form", csrf="A" * 43, **sign)
    assert wrong_csrf.status_code == 403
    borrowed_csrf = await post_form(http, page, "sign-form", csrf=other_fields["csrf"], **sign)
    assert borrowed_csrf.status_code == 403
    wrong_link = await post_form(http, page, "sign-form", token=other_fields["token"], **sign)
    assert wrong_link.status_code == 403
    assert "This link is not valid" in wrong_link.text
    form = page_forms(page.text)["sign-form"]
    foreign = await http.post(
        form["action"], data={**form["fields"], **sign}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert "another site" in foreign.text
    no_nonce = await post_form(http, page, "sign-form", nonce="", **sign)
    assert no_nonce.status_code == 422
    assert (await deal_status(stack, "portal-csrf")).stage == DealStage.SOW_SENT


async def test_sign_is_validated_deduplicated_and_keeps_evidence(stack: Stack, http: httpx.AsyncClient) -> None:
    link = await open_deal(stack, "portal-sign")
    page = await http.get(link)

    no_consent = await post_form(http, page, "sign-form", full_name="Casey Client")
    assert no_consent.status_code == 422
    assert "Tick the box" in no_consent.text
    short_name = await post_form(http, page, "sign-form", full_name=" C ", consent="true")
    assert short_name.status_code == 422
    assert "Your full name" in short_name.text
    wrong_sow = await post_form(
        http, page, "sign-form", full_name="Casey Client", consent="true", sow_sha256="0" * 64
    )
    assert wrong_sow.status_code == 409
    assert (await deal_status(stack, "portal-sign")).signature is None

    signed = await post_form(http, page, "sign-form", full_name="Casey Client", consent="true")
    assert signed.status_code == 200, signed.text
    assert "Signed" in signed.text
    double_click = await post_form(http, page, "sign-form", full_name="Casey Client", consent="true")
    assert double_click.status_code == 200
    assert double_click.text == signed.text
    status = await deal_status(stack, "portal-sign")
    assert status.signature is not None
    assert status.signature.signer_name == "Casey Client"
    assert status.signature.ip == "127.0.0.1"
    assert status.signature.user_agent == BROWSER_HEADERS["User-Agent"]
    assert status.signature.sow_sha256 == status.sow_sha256

    fresh = await http.get(link)
    assert "sign-form" not in page_forms(fresh.text)
    assert "Signed by Casey Client" in fresh.text
    again = await post_form(http, page, "sign-form", full_name="Casey Client", consent="true", nonce="n" * 24)
    assert again.status_code == 409
    assert "Back to your deal" in again.text


async def test_actions_not_possible_now_show_the_workflows_reason(stack: Stack, http: httpx.AsyncClient) -> None:
    page = await http.get(await open_deal(stack, "portal-early"))
    fields = page_forms(page.text)["sign-form"]["fields"]
    for action, extra in (("approve", {}), ("revise", {"notes": "bigger logo"}), ("dispute", {"reason": "late"})):
        response = await http.post(
            f"/portal/portal-early/{action}",
            data={**fields, "nonce": f"{action}-nonce-0001", "milestone_key": "build", **extra},
        )
        assert response.status_code == 409, (action, response.text)
        assert 'data-outcome="error"' in response.text
        assert "&#39;Build the site&#39; is pending" in response.text, "the validator's reason is shown"
    missing_notes = await http.post(
        "/portal/portal-early/revise", data={**fields, "nonce": "revise-nonce-0002", "milestone_key": "build"}
    )
    assert missing_notes.status_code == 422
    assert "What should change" in missing_notes.text
    missing_reason = await http.post(
        "/portal/portal-early/dispute", data={**fields, "nonce": "dispute-nonce-02", "milestone_key": "build"}
    )
    assert missing_reason.status_code == 422
    assert "Why" in missing_reason.text
    assert (await deal_status(stack, "portal-early")).stage == DealStage.SOW_SENT


async def test_pay_revise_approve_and_dispute_through_the_portal(stack: Stack, http: httpx.AsyncClient) -> None:
    link = await open_deal(stack, "portal-review")
    await sign_in_portal(http, link)
    awaiting = await wait_for_status(
        stack, "portal-review", lambda s: milestone(s, "build").checkout_url is not None, what="a pay link"
    )
    page = await http.get(link)
    assert f'href="{milestone(awaiting, "build").checkout_url}"' in page.text.replace("&amp;", "&")
    paid_page = await http.get(link + "&paid=1")
    assert "Payment received, waiting for confirmation" in paid_page.text

    await pay_milestone(stack, "portal-review", "build")
    await submit_deliverable(stack, "portal-review", "build")
    page = await http.get(link)
    assert "site.zip" in page.text
    revised = await post_form(http, page, "revise-build", notes="Please add a contact page.")
    assert revised.status_code == 200, revised.text
    revising = await deal_status(stack, "portal-review")
    assert milestone(revising, "build").revisions == 1
    assert milestone(revising, "build").state == MilestoneState.IN_PROGRESS
    await submit_deliverable(stack, "portal-review", "build", summary="with a contact page")
    page = await http.get(link)
    approved = await post_form(http, page, "approve-build")
    assert approved.status_code == 200, approved.text
    assert "Approved" in approved.text
    await wait_for_summary(
        stack, "portal-review",
        lambda s: milestone(s, "build").state in (MilestoneState.APPROVED, MilestoneState.RELEASED),
        what="approval",
    )

    await pay_milestone(stack, "portal-review", "polish")
    page = await http.get(link)
    disputed = await post_form(http, page, "dispute-polish", reason="The vendor stopped answering.")
    assert disputed.status_code == 200, disputed.text
    status = await wait_for_status(
        stack, "portal-review", lambda s: milestone(s, "polish").state == MilestoneState.DISPUTED,
        what="the dispute",
    )
    assert milestone(status, "polish").dispute_reason == "The vendor stopped answering."

    # The operator settles the dispute through the admin API: the vendor is paid.
    admin = {"Authorization": f"Bearer {stack.settings.admin_token}", "Idempotency-Key": "settle-polish"}
    resolution = {"milestone_key": "polish", "resolution": "release", "notes": "work was delivered"}
    for _double_click in range(2):
        settled = await http.post(
            f"{stack.bridge_url}/api/deals/portal-review/disputes/resolve", json=resolution, headers=admin
        )
        assert settled.status_code == 200, settled.text
    status = await wait_for_status(
        stack, "portal-review", lambda s: milestone(s, "polish").state == MilestoneState.RELEASED,
        what="the release after the dispute",
    )
    assert sum(1 for e in status.timeline if e.kind == "dispute_resolved") == 1
    refused = await http.post(
        f"{stack.bridge_url}/api/deals/portal-review/disputes/resolve", json=resolution,
        headers={"Authorization": f"Bearer {stack.settings.admin_token}"},
    )
    assert refused.status_code == 409
