"""Vendor and admin actions and Stripe webhooks against running deals (the whole stack).

The sandbox pays and sends its webhooks to the bridge exactly as Stripe would; the vendor API
hands in work; the admin API reads and cancels. Every effect is checked on the workflow itself.
"""

from __future__ import annotations

import json

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, ServerError

from bridge.deals import UNPROCESSED_BY_WORKER, unprocessed_by_worker
from dealflow.messages import DealStage, MilestoneState
from devstack.stack import Stack
from tests.bridge_support import (
    BROWSER_HEADERS,
    VENDOR_DELIVERABLE,
    deal_status,
    eventually,
    milestone,
    open_deal,
    pay_milestone,
    post_form,
    sign_in_portal,
    signed,
    wait_for_summary,
)


@pytest.fixture
async def http(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.bridge_url, headers=BROWSER_HEADERS) as client:
        yield client


def _vendor(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.settings.vendor_token}"}


def _admin(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.settings.admin_token}"}


async def test_vendor_submission_is_refused_until_funded_then_idempotent(stack: Stack, http: httpx.AsyncClient) -> None:
    await sign_in_portal(http, await open_deal(stack, "vendor-deal"))
    path = "/api/vendor/deals/vendor-deal/milestones/build/deliverables"
    early = await http.post(path, json=VENDOR_DELIVERABLE, headers=_vendor(stack))
    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "rejected"
    assert early.json()["error"]["message"]

    await pay_milestone(stack, "vendor-deal", "build")
    headers = {**_vendor(stack), "Idempotency-Key": "upload-7f3a"}
    first = await http.post(path, json=VENDOR_DELIVERABLE, headers=headers)
    again = await http.post(path, json=VENDOR_DELIVERABLE, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    assert first.json()["stage"] == DealStage.DELIVERED
    status = await deal_status(stack, "vendor-deal")
    build = milestone(status, "build")
    assert build.state == MilestoneState.DELIVERED
    assert len(build.deliverables) == 1
    assert build.deliverables[0].artifacts[0].name == "site.zip"


async def test_admin_reads_lists_and_cancels_a_deal(stack: Stack, http: httpx.AsyncClient) -> None:
    await open_deal(stack, "admin-deal")
    shown = await http.get("/api/deals/admin-deal", headers=_admin(stack))
    assert shown.status_code == 200
    assert shown.json()["deal_id"] == "admin-deal"
    assert shown.json()["stage"] == DealStage.SOW_SENT

    async def listed() -> list:
        page = (await http.get("/api/deals", params={"stage": "sow_sent"}, headers=_admin(stack))).json()
        return [d for d in page["deals"] if d["deal_id"] == "admin-deal"]

    [row] = await eventually(listed, what="the read model to show the deal")
    assert row["amount_total"] == 150000

    cancel = {"reason": "The client withdrew."}
    headers = {**_admin(stack), "Idempotency-Key": "cancel-1"}
    cancelled = await http.post("/api/deals/admin-deal/cancel", json=cancel, headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    repeated = await http.post("/api/deals/admin-deal/cancel", json=cancel, headers=headers)
    assert repeated.json() == cancelled.json()
    await wait_for_summary(stack, "admin-deal", lambda s: s.stage == DealStage.CANCELLED, what="cancellation")
    again = await http.post("/api/deals/admin-deal/cancel", json=cancel, headers=_admin(stack))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "rejected"
    # DEALFLOW_ADMIN_TOKEN is the operator "admin": the timeline and the ledger name them.
    status = (await http.get("/api/deals/admin-deal", headers=_admin(stack))).json()
    assert {e["kind"]: e["operator"] for e in status["timeline"]}["cancelled_requested"] == "admin"

    async def ledger_operators() -> list:
        return await stack.pool.fetch(
            "SELECT kind, detail->>'operator' AS operator FROM deal_events "
            "WHERE deal_id = 'admin-deal' AND detail ? 'operator' ORDER BY id"
        )

    rows = await eventually(ledger_operators, what="the ledger to name the operator")
    assert ("cancelled_requested", "admin") in [(r["kind"], r["operator"]) for r in rows]


async def test_a_redelivered_webhook_has_one_effect(stack: Stack, http: httpx.AsyncClient) -> None:
    await sign_in_portal(http, await open_deal(stack, "dup-deal"))
    funded = await pay_milestone(stack, "dup-deal", "build")
    rows = await stack.pool.fetch(
        "SELECT event_id, payload::text AS payload, status FROM stripe_events WHERE deal_id = 'dup-deal'"
    )
    # One signal per payment; payment_intent.created and charge.succeeded are kept, not relayed.
    assert sorted(r["status"] for r in rows) == ["delivered", "folded", "ignored", "ignored"]

    for row in rows:
        body, headers = signed(json.loads(row["payload"]), secret=stack.settings.stripe_webhook_secret or "")
        response = await http.post("/webhooks/stripe", content=body, headers=headers)
        assert response.json()["status"] == "duplicate"
    assert await stack.pool.fetchval("SELECT count(*) FROM stripe_events WHERE deal_id = 'dup-deal'") == len(rows)
    after = await deal_status(stack, "dup-deal")
    assert after.money.funded == funded.money.funded == milestone(funded, "build").amount


async def test_a_deal_runs_to_completion_through_the_bridge_alone(stack: Stack, http: httpx.AsyncClient) -> None:
    """Client in the portal, vendor on its API, Stripe's webhooks: nothing else touches the deal."""
    link = await open_deal(stack, "whole-deal")
    await sign_in_portal(http, link)
    for key in ("build", "polish"):
        await pay_milestone(stack, "whole-deal", key)
        delivered = await http.post(
            f"/api/vendor/deals/whole-deal/milestones/{key}/deliverables", json=VENDOR_DELIVERABLE, headers=_vendor(stack)
        )
        assert delivered.status_code == 200, delivered.text
        page = await http.get(link)
        approved = await post_form(http, page, f"approve-{key}")
        assert approved.status_code == 200, approved.text

    async def completed() -> dict | None:
        shown = (await http.get("/api/deals/whole-deal", headers=_admin(stack))).json()
        return shown if shown["stage"] == DealStage.COMPLETED else None

    final = await eventually(completed, timeout=30, what="the deal to complete")
    assert final["money"]["released"] == final["money"]["contract"] == 150000
    assert [m["state"] for m in final["milestones"]] == ["released", "released"]
    inbox = await stack.pool.fetch("SELECT status FROM stripe_events WHERE deal_id = 'whole-deal'")
    assert sorted(r["status"] for r in inbox) == ["delivered"] * 2 + ["folded"] * 2 + ["ignored"] * 4


async def test_a_chargeback_reaches_its_deal_through_the_ledger(stack: Stack, http: httpx.AsyncClient) -> None:
    """Stripe's dispute objects carry no metadata, only the payment intent: the bridge finds the
    deal through the ledger's confirmed payment, and the workflow pauses then resumes the work."""
    await sign_in_portal(http, await open_deal(stack, "chargeback-deal"))
    funded = await pay_milestone(stack, "chargeback-deal", "build")
    payment_intent = milestone(funded, "build").payment_intent_id
    assert payment_intent is not None
    async with stack.sandbox_control() as sandbox:

        async def ledger_has_the_charge() -> bool:
            return bool(await stack.pool.fetchval("SELECT 1 FROM payments WHERE stripe_id = $1", payment_intent))

        await eventually(ledger_has_the_charge, what="the charge in the ledger")
        dispute = await sandbox.open_dispute(payment_intent=payment_intent, reason="product_not_received")
        await wait_for_summary(
            stack, "chargeback-deal", lambda s: milestone(s, "build").state == MilestoneState.DISPUTED,
            what="the chargeback to pause the milestone",
        )
        disputed = await deal_status(stack, "chargeback-deal")
        assert milestone(disputed, "build").dispute_reason
        await sandbox.close_dispute(dispute["id"], "won")
    await wait_for_summary(
        stack, "chargeback-deal", lambda s: milestone(s, "build").state == MilestoneState.IN_PROGRESS,
        what="the won dispute to resume the work",
    )
    orphans = await stack.pool.fetchval("SELECT count(*) FROM stripe_events WHERE status = 'orphan'")
    assert orphans == 0


@pytest.mark.parametrize(
    ("cause", "retried"),
    [
        (ServerError(f"{UNPROCESSED_BY_WORKER}. Probably, it is not supported by the worker."), True),
        (ApplicationError(f"{UNPROCESSED_BY_WORKER}. Probably, ..."), True),
        (ApplicationError("'Milestone 1' is in_progress; approval needs it delivered"), False),
    ],
    ids=["server-rejection", "as-application-error", "the-deal-refused"],
)
def test_only_an_update_no_worker_answered_is_asked_again(cause: Exception, retried: bool) -> None:
    """A worker killed mid-task leaves the update unanswered and Temporal rejects it: the deal
    never saw it, so the bridge asks again with the same update id; the deal's own no stands."""
    error = WorkflowUpdateFailedError(cause)
    assert unprocessed_by_worker(error) is retried
