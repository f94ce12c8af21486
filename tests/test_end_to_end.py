"""One deal from SOW to receipt on the real dev server: starter, worker, sandbox, bridge, SMTP.

Its history can be recorded for the replay test (see tests/recorded.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio.client import WorkflowHandle

import starter
from dealflow.contract import STATUS, SUMMARY
from dealflow.messages import (
    ActionResult,
    ApproveMilestone,
    DealStage,
    DealStatus,
    DealSummary,
    MilestoneState,
    MilestoneSummary,
    SignSow,
    SubmitDeliverable,
)
from dealflow.specs import load_spec
from devstack.stack import Stack
from tests.paths import ROOT
from tests.recorded import record_history


async def wait_for_summary(
    handle: WorkflowHandle, predicate: Callable[[DealSummary], bool], timeout: float = 60
) -> DealSummary:
    """Ask the small `summary` query until the predicate holds; fail with the last status if it
    never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        summary = await handle.query(SUMMARY, result_type=DealSummary)
        if predicate(summary):
            return summary
        if asyncio.get_running_loop().time() > deadline:
            status = await handle.query(STATUS, result_type=DealStatus)
            raise AssertionError(f"condition not reached; last status: {status.model_dump_json(indent=1)}")
        await asyncio.sleep(0.2)


async def test_deal_runs_from_sow_to_receipt(stack: Stack) -> None:
    spec = load_spec(ROOT / "examples" / "website-redesign.yaml")
    spec = spec.model_copy(
        update={
            "deal_id": f"e2e-{uuid.uuid4().hex[:8]}",
            "milestones": spec.milestones[:2],
            "vendor": spec.vendor.model_copy(update={"fulfillment_url": None}),
        }
    )
    handle = await starter.start_deal(stack.client, spec, stack.settings.task_queue)
    assert stack.mail is not None
    sow_mail = await stack.mail.wait_for(lambda m: m["X-Dealflow-Kind"] == "sow_sent")
    assert sow_mail["To"] == spec.client.email
    assert sow_mail["X-Dealflow-Deal"] == spec.deal_id

    await wait_for_summary(handle, lambda s: s.stage == DealStage.SOW_SENT)
    status = await handle.query(STATUS, result_type=DealStatus)
    signed = await handle.execute_update(
        "sign_sow",
        SignSow(signer_name=spec.client.name, consent=True, sow_sha256=status.sow_sha256),
        result_type=ActionResult,
    )
    assert signed.stage in (DealStage.SIGNED, DealStage.AWAITING_FUNDING)

    async with stack.sandbox_control() as sandbox:
        for milestone in spec.milestones:
            summary = await wait_for_summary(
                handle,
                lambda s, key=milestone.key: _milestone(s, key).checkout_session_id is not None
                and _milestone(s, key).state == MilestoneState.AWAITING_FUNDING,
            )
            session_id = _milestone(summary, milestone.key).checkout_session_id
            assert session_id is not None
            await sandbox.pay(session_id)  # the webhook reaches the workflow through the bridge
            await wait_for_summary(handle, lambda s, key=milestone.key: _milestone(s, key).state == MilestoneState.IN_PROGRESS)
            await handle.execute_update(
                "submit_deliverable",
                SubmitDeliverable(milestone_key=milestone.key, summary=f"{milestone.title} done"),
                result_type=ActionResult,
            )
            await handle.execute_update(
                "approve_milestone",
                ApproveMilestone(milestone_key=milestone.key, approved_by=spec.client.name),
                result_type=ActionResult,
            )
        money = await sandbox.money()

    final = await wait_for_summary(handle, lambda s: s.stage == DealStage.COMPLETED)
    await handle.result()
    assert final.money.funded == spec.total_amount or final.money.released == spec.total_amount
    assert final.money.released == spec.total_amount
    assert final.money.refunded == 0
    assert all(m.state == MilestoneState.RELEASED for m in final.milestones)

    rows = await stack.pool.fetch(
        "SELECT kind, amount, sandbox, livemode FROM payments WHERE deal_id = $1 ORDER BY id", spec.deal_id
    )
    charges = [r for r in rows if r["kind"] == "charge"]
    assert sum(r["amount"] for r in charges) == spec.total_amount
    assert all(r["sandbox"] and not r["livemode"] for r in rows)
    assert money["totals"][spec.currency]["charge"] == spec.total_amount  # what the sandbox itself recorded
    receipts = await stack.pool.fetchval("SELECT count(*) FROM receipts WHERE deal_id = $1", spec.deal_id)
    assert receipts == len(spec.milestones)
    receipt_mails = [m for m in stack.mail.messages if m.get("X-Dealflow-Kind") == "approved_receipt"]
    assert len(receipt_mails) == len(spec.milestones)
    assert all(any(part.get_content_type() == "application/pdf" for part in m.iter_attachments()) for m in receipt_mails)

    await record_history(handle, "end_to_end")


def _milestone(summary: DealSummary, key: str) -> MilestoneSummary:
    return next(m for m in summary.milestones if m.key == key)
