"""Countersigned deals on the whole stack: each party signs with their own key (the client's
and the vendor's portal links, the vendor API), in the spec's order; the signing certificate is
mailed to both and handed out by the admin API and the CLI as the ledger keeps it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx
import pytest

import starter
from dealflow.links import verify_link
from dealflow.messages import DealStage, MilestoneState
from devstack.stack import Stack
from tests.bridge_support import (
    BROWSER_HEADERS,
    deal_spec,
    deal_status,
    link_token,
    open_deal,
    page_forms,
    portal_link_to,
    post_form,
    sign_in_portal,
    wait_for_status,
    wait_for_summary,
)
from tests.cli_support import cli_environment, run_dealflow

VENDOR = "vera@vendor.example"
CLIENT = "casey@client.example"


@pytest.fixture
async def http(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=BROWSER_HEADERS) as client:
        yield client


async def dealflow_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_environment(
        TEMPORAL_ADDRESS=stack.client.service_client.config.target_host,
        DEALFLOW_HOME=str(stack.settings.home),
        DATABASE_URL=stack.settings.database_url or "",
    )
    return await run_dealflow(env, *args)


async def test_client_signs_then_the_vendor_countersigns_on_their_own_link(
    stack: Stack, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    client_link = await open_deal(stack, "cs-portal", signing_order=["client", "vendor"])
    signed = await post_form(http, await http.get(client_link), "sign-form", full_name="Casey Client", consent="true")
    assert signed.status_code == 200, signed.text
    assert "The vendor signs next" in signed.text

    vendor_link = await portal_link_to(stack, "cs-portal", VENDOR)
    assert verify_link(stack.settings.secret_key or "", "cs-portal", link_token(vendor_link)).party == "vendor"
    vendor_page = await http.get(vendor_link)
    assert vendor_page.status_code == 200
    assert "Signed by Casey Client for the client" in vendor_page.text
    assert "sign-form" in page_forms(vendor_page.text)
    assert "Pay " not in vendor_page.text
    fields = page_forms(vendor_page.text)["sign-form"]["fields"]
    not_theirs = await http.post(
        "/portal/cs-portal/approve", data={**fields, "milestone_key": "build"}, headers=BROWSER_HEADERS
    )
    assert not_theirs.status_code == 403
    assert "This link is the vendor&#39;s" in not_theirs.text

    client_page = await http.get(client_link)
    assert "sign-form" not in page_forms(client_page.text)
    assert "Waiting for the vendor's signature." in client_page.text
    assert (await deal_status(stack, "cs-portal")).stage is DealStage.SOW_SENT

    countersigned = await post_form(http, vendor_page, "sign-form", full_name="Vera Vendor", consent="true")
    assert countersigned.status_code == 200, countersigned.text
    assert "Signed by every party" in countersigned.text
    status = await wait_for_status(
        stack, "cs-portal", lambda s: s.certificate_sha256 is not None, what="the signing certificate"
    )
    assert [(s.party, s.signer_name, s.ip) for s in status.signatures] == [
        ("client", "Casey Client", "127.0.0.1"),
        ("vendor", "Vera Vendor", "127.0.0.1"),
    ]
    await wait_for_summary(
        stack, "cs-portal", lambda s: s.milestones[0].state == MilestoneState.AWAITING_FUNDING, what="funding"
    )

    assert stack.mail is not None
    for to in (CLIENT, VENDOR):
        mail = await stack.mail.wait_for(
            lambda m, to=to: m["To"] == to and m["X-Dealflow-Kind"] == "sow_signed"
        )
        (pdf,) = [part.get_content() for part in mail.iter_attachments()]
        assert hashlib.sha256(pdf).hexdigest() == status.certificate_sha256

    admin_bearer = {"Authorization": f"Bearer {stack.settings.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=admin_bearer) as admin:
        kept = await admin.get("/api/deals/cs-portal/certificate")
        assert kept.status_code == 200
        assert kept.headers["content-type"] == "application/pdf"
        assert kept.headers["x-certificate-sha256"] == status.certificate_sha256
        assert hashlib.sha256(kept.content).hexdigest() == status.certificate_sha256
        assert (await admin.get("/api/deals/cs-portal/certificate?version=2")).status_code == 404
        assert (await admin.get("/api/deals/no-such-deal/certificate")).status_code == 404
    assert (await http.get("/api/deals/cs-portal/certificate")).status_code == 401

    terms = {
        "reason": "a second page",
        "milestones": [{"key": "build", "title": "Build the site", "amount": 120000, "due_in_days": 10},
                       {"key": "polish", "title": "Polish and hand over", "amount": 40000, "due_in_days": 20}],
    }
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=admin_bearer) as admin:
        assert (await admin.post("/api/deals/cs-portal/amendments", json=terms)).status_code == 200
    vendor_view = await http.get(vendor_link)
    assert "Change order: version 2" in vendor_view.text
    assert "The client is asked to accept or decline it." in vendor_view.text
    assert "accept-amendment-form" not in page_forms(vendor_view.text)
    vendor_accepts = await http.post(
        "/portal/cs-portal/accept-amendment",
        data={**fields, "version": "2", "full_name": "Vera Vendor", "consent": "true"},
        headers=BROWSER_HEADERS,
    )
    assert vendor_accepts.status_code == 403
    assert "This link is the vendor&#39;s" in vendor_accepts.text

    out = tmp_path / "certificate.pdf"
    written = await dealflow_cli(stack, "certificate", "cs-portal", "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == status.certificate_sha256
    shown = await dealflow_cli(stack, "status", "cs-portal")
    assert "signed by Vera Vendor for the vendor" in shown.stdout
    missing = await dealflow_cli(stack, "certificate", "cs-portal", "-o", str(out), "--version", "3")
    assert missing.returncode == 1
    assert "no signing certificate of version 3" in missing.stderr


async def test_vendor_signs_first_through_the_vendor_api(stack: Stack, http: httpx.AsyncClient) -> None:
    await starter.start_deal(
        stack.client, deal_spec("cs-api", signing_order=["vendor", "client"]), stack.settings.task_queue
    )
    await starter.start_deal(stack.client, deal_spec("cs-alone"), stack.settings.task_queue)
    await wait_for_summary(stack, "cs-api", lambda s: s.stage == DealStage.SOW_SENT, what="the SOW")
    await wait_for_summary(stack, "cs-alone", lambda s: s.stage == DealStage.SOW_SENT, what="the SOW")
    vendor = {"Authorization": f"Bearer {stack.settings.vendor_token}", "User-Agent": "vendor-tool/2"}
    body = {"signer_name": "Vera Vendor", "consent": True}
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=vendor) as api:
        assert (await api.post("/api/vendor/deals/cs-api/signature", json=body, headers={"Authorization": "Bearer nope"})).status_code == 401
        no_consent = await api.post("/api/vendor/deals/cs-api/signature", json={**body, "consent": False})
        assert no_consent.status_code == 409
        assert "consent: the signer must consent" in no_consent.text
        alone = await api.post("/api/vendor/deals/cs-alone/signature", json=body)
        assert alone.status_code == 409
        assert "only the client signs" in alone.text
        signed = await api.post("/api/vendor/deals/cs-api/signature", json=body, headers={"Idempotency-Key": "k1"})
        assert signed.status_code == 200, signed.text
        assert signed.json()["message"] == "Signed: thank you. The client signs next; work starts once they have."
        again = await api.post("/api/vendor/deals/cs-api/signature", json=body, headers={"Idempotency-Key": "k1"})
        assert again.json() == signed.json()

    status = await deal_status(stack, "cs-api")
    assert [(s.party, s.user_agent) for s in status.signatures] == [("vendor", "vendor-tool/2")]
    assert status.awaiting_signature == "client"
    await sign_in_portal(http, await portal_link_to(stack, "cs-api", CLIENT))
    await wait_for_status(
        stack, "cs-api", lambda s: s.certificate_sha256 is not None, what="the signing certificate"
    )
