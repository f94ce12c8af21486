"""Human actions on DealWorkflow: the revision loop and its limit, and every refusal with its reason.

Each action is an update (refused by its validator, with the reason) and a signal of the same
name (an invalid one is recorded as rejected and changes nothing).
"""

from __future__ import annotations

import hashlib

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    ApproveMilestone,
    CancelDeal,
    DealStage,
    EmailKind,
    MilestoneState,
    OpenDispute,
    RequestRevision,
    ResolveDispute,
    SignSow,
    SubmitDeliverable,
)
from tests.deal_harness import SOW, make_spec, running_deal
from workflows.deal import DealWorkflow


async def test_revisions_loop_until_the_limit(env: WorkflowEnvironment) -> None:
    spec = make_spec(
        milestones=1, max_revisions=2, vendor={"fulfillment_url": "https://vendor.example/wo"}
    )
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await deal.fund("m1")
        for revision in (1, 2):
            await deal.deliver("m1")
            result = await deal.update(
                "request_revision", RequestRevision(milestone_key="m1", notes=f"change {revision}")
            )
            assert result.stage is DealStage.IN_PROGRESS
            assert result.message == f"Revision {revision} of 2 requested"
        await deal.deliver("m1")
        reason = await deal.rejected(
            "request_revision", RequestRevision(milestone_key="m1", notes="more")
        )
        assert reason.startswith("revision limit reached") and "2 of 2" in reason
        assert "policy.max_revisions" in reason
        status = await deal.approve("m1")

    milestone = status.milestones[0]
    assert milestone.revisions == 2
    assert [d.revision for d in milestone.deliverables] == [0, 1, 2]
    orders = deal.fake.args("dispatch_work_order")
    assert [(o.revision, o.notes) for o in orders] == [(0, None), (1, "change 1"), (2, "change 2")]
    mails = deal.fake.mails(EmailKind.REVISION_REQUESTED, to="vera@vendor.example")
    assert [m.context["notes"] for m in mails] == ["change 1", "change 2"]
    steps = [e.kind for e in status.timeline if e.kind in ("revision_requested", "work_resumed")]
    assert steps == ["revision_requested", "work_resumed"] * 2


async def test_every_invalid_update_is_refused_with_its_reason(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=2)) as deal:
        sow_hash = hashlib.sha256(SOW.encode()).hexdigest()
        assert "consent" in await deal.rejected(
            "sign_sow", SignSow(signer_name="Ada Client", consent=False)
        )
        assert "hash mismatch" in await deal.rejected(
            "sign_sow", SignSow(signer_name="Ada Client", consent=True, sow_sha256="0" * 64)
        )
        assert "is pending; approval needs it delivered" in await deal.rejected(
            "approve_milestone", ApproveMilestone(milestone_key="m1")
        )
        result = await deal.update(
            "sign_sow", SignSow(signer_name="Ada Client", consent=True, sow_sha256=sow_hash)
        )
        assert result.stage is DealStage.SIGNED
        assert "already signed" in await deal.rejected(
            "sign_sow", SignSow(signer_name="Ada Client", consent=True)
        )
        await deal.milestone_state("m1", MilestoneState.AWAITING_FUNDING)

        refusals = {
            "unknown milestone 'nope'": (
                "submit_deliverable",
                SubmitDeliverable(milestone_key="nope", summary="x"),
            ),
            "'Milestone 1' is awaiting_funding; a deliverable needs it": (
                "submit_deliverable",
                SubmitDeliverable(milestone_key="m1", summary="x"),
            ),
            "'Milestone 2' is pending; approval needs it delivered": (
                "approve_milestone",
                ApproveMilestone(milestone_key="m2"),
            ),
            "a revision request needs it delivered": (
                "request_revision",
                RequestRevision(milestone_key="m1", notes="x"),
            ),
            "a dispute needs it": ("open_dispute", OpenDispute(milestone_key="m1", reason="x")),
            "a resolution needs it disputed": (
                "resolve_dispute",
                ResolveDispute(milestone_key="m1", resolution="refund"),
            ),
        }
        for expected, (name, arg) in refusals.items():
            assert expected in await deal.rejected(name, arg), name

        await deal.update("cancel_deal", CancelDeal(reason="client went away"))
        assert "the deal is cancelled" in await deal.rejected(
            "cancel_deal", CancelDeal(reason="again")
        )
        final = await deal.result()

    assert final.stage is DealStage.CANCELLED
    assert not [e for e in final.timeline if e.kind == "rejected"], "refused updates leave no trace"


async def test_invalid_signals_are_recorded_as_rejected_and_change_nothing(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.handle.signal(
            DealWorkflow.approve_milestone_signal, ApproveMilestone(milestone_key="m1")
        )
        await deal.handle.signal(
            DealWorkflow.sign_sow_signal, SignSow(signer_name="Ada Client", consent=False)
        )
        status = await deal.wait_for(
            "two rejections", lambda s: len([e for e in s.timeline if e.kind == "rejected"]) == 2
        )
        assert status.stage is DealStage.SOW_SENT
        rejected = [e.message for e in status.timeline if e.kind == "rejected"]
        assert rejected[0].startswith("approve_milestone rejected: 'Milestone 1' is pending")
        assert rejected[1].startswith("sign_sow rejected: consent")

        await deal.handle.signal(
            DealWorkflow.sign_sow_signal, SignSow(signer_name="Ada Client", consent=True)
        )
        status = await deal.milestone_state("m1", MilestoneState.AWAITING_FUNDING)
        assert status.signature and status.signature.sow_sha256 == status.sow_sha256


async def test_poisoned_text_is_refused_by_the_deal_itself(env: WorkflowEnvironment) -> None:
    """The Temporal UI and CLI reach the deal without the bridge: the deal refuses a NUL byte or
    a line break in a one-line field as the bridge would, and the next good action goes on."""
    async with running_deal(env, make_spec(milestones=1)) as deal:
        refusal = await deal.rejected("sign_sow", SignSow(signer_name="Ada\x00Client", consent=True))
        await deal.handle.signal(
            DealWorkflow.sign_sow_signal, SignSow(signer_name="Ada\r\nBcc: x", consent=True)
        )
        status = await deal.wait_for(
            "the signal's refusal", lambda s: any(e.kind == "rejected" for e in s.timeline)
        )
        assert status.stage is DealStage.SOW_SENT
        signed = await deal.sign()

    assert refusal == "signer_name: contains a NUL byte"
    [rejected] = [e for e in status.timeline if e.kind == "rejected"]
    assert "signer_name: contains a line break" in rejected.message
    assert "\x00" not in rejected.message and "\r" not in rejected.message
    assert signed.signature is not None and signed.signature.signer_name == "Ada Client"
