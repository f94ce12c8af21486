"""Operators by name: each operator action is recorded with the operator's name, in the timeline
and in its ledger row; one that names nobody (a signal from the Temporal UI) says so."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    UNNAMED_OPERATOR,
    CancelDeal,
    DealStatus,
    MilestoneState,
    OpenDispute,
    ResolveDispute,
)
from tests.deal_harness import DealRun, make_spec, running_deal
from workflows.deal import DealWorkflow


def operators_by_kind(deal: DealRun, status: DealStatus) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """{kind: operator} of the timeline, and of the ledger rows the deal wrote."""
    timeline = {entry.kind: entry.operator for entry in status.timeline}
    ledger = {event.kind: event.detail.get("operator") for event in deal.fake.ledger_events.values()}
    return timeline, ledger


async def test_named_operators_are_recorded_in_the_timeline_and_the_ledger(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=2)) as deal:
        await deal.sign()
        await deal.fund("m1")
        await deal.update("open_dispute", OpenDispute(milestone_key="m1", reason="late"))
        await deal.update(
            "resolve_dispute",
            ResolveDispute(milestone_key="m1", resolution="resume", operator="grace"),
        )
        await deal.milestone_state("m1", MilestoneState.IN_PROGRESS)
        rejected = await deal.rejected(
            "resolve_dispute",
            ResolveDispute(milestone_key="m1", resolution="release", operator="linus"),
        )
        assert "needs it disputed" in rejected
        await deal.update("cancel_deal", CancelDeal(reason="budget cut", operator="ada"))
        status = await deal.result()

    timeline, ledger = operators_by_kind(deal, status)
    assert timeline["dispute_resolved"] == ledger["dispute_resolved"] == "grace"
    assert timeline["cancelled_requested"] == ledger["cancelled_requested"] == "ada"
    assert timeline["cancelled"] == ledger["cancelled"] == "ada"
    assert timeline["dispute_opened"] is None and ledger["dispute_opened"] is None
    # A refused update leaves no trace (its validator refused it); the client's actions name nobody.
    assert timeline["signed"] is None and "rejected" not in timeline


async def test_a_signal_without_an_operator_records_an_unnamed_one(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await deal.sign()
        await deal.handle.signal(DealWorkflow.cancel_deal_signal, CancelDeal(reason="from the UI"))
        status = await deal.result()
        await deal.replay()

    timeline, ledger = operators_by_kind(deal, status)
    assert timeline["cancelled"] == ledger["cancelled"] == UNNAMED_OPERATOR
    requested = next(e for e in status.timeline if e.kind == "cancelled_requested")
    assert requested.source == "operator" and requested.operator == "(unnamed)"
