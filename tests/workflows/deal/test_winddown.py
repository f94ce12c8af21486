"""Cancelling a deal at every stage runs the right compensations (saga) and tells both parties."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from temporalio.testing import WorkflowEnvironment

from dealflow.messages import (
    CancelDeal,
    DealStage,
    DealStatus,
    EmailKind,
    MilestoneState,
    OpenDispute,
)
from tests.deal_harness import DealRun, make_spec, running_deal
from workflows.deal import DealWorkflow

S = MilestoneState


async def unsigned(deal: DealRun) -> None:
    await deal.wait_calls("the SOW mail", lambda f: f.mails(EmailKind.SOW_SENT))


async def awaiting_funding(deal: DealRun) -> None:
    await deal.sign()
    await deal.session_of("m1")


async def in_progress(deal: DealRun) -> None:
    await deal.sign()
    await deal.fund("m1")


async def delivered(deal: DealRun) -> None:
    await in_progress(deal)
    await deal.deliver("m1")


async def disputed_delivery(deal: DealRun) -> None:
    await delivered(deal)
    await deal.update("open_dispute", OpenDispute(milestone_key="m1", reason="not what we agreed"))


async def second_milestone_in_progress(deal: DealRun) -> None:
    await in_progress(deal)
    await deal.deliver("m1")
    await deal.approve("m1")
    await deal.fund("m2")


@dataclass
class Case:
    reach: Callable[[DealRun], Awaitable[None]]
    policy: dict[str, str]
    #: Stripe calls the compensations make, in order
    stripe_calls: list[str]
    refunded: int
    released: int
    states: list[MilestoneState]


CASES = {
    "unsigned": Case(unsigned, {}, [], 0, 0, [S.CANCELLED, S.CANCELLED]),
    "awaiting funding: the open link is expired": Case(
        awaiting_funding, {}, ["expire_checkout_session"], 0, 0, [S.CANCELLED, S.CANCELLED]
    ),
    "captured, not delivered: refunded": Case(
        in_progress, {}, ["refund_payment"], 100_000, 0, [S.CANCELLED, S.CANCELLED]
    ),
    "authorized only: the hold is voided": Case(
        in_progress,
        {"capture": "on_approval"},
        ["cancel_authorization"],
        100_000,
        0,
        [S.CANCELLED, S.CANCELLED],
    ),
    "delivered: the vendor is paid for the work": Case(
        delivered, {}, [], 0, 100_000, [S.RELEASED, S.CANCELLED]
    ),
    "delivered, policy refunds all unreleased money": Case(
        delivered,
        {"cancel_refund": "all_unreleased"},
        ["refund_payment"],
        100_000,
        0,
        [S.CANCELLED, S.CANCELLED],
    ),
    "authorized and delivered: captured, then paid out": Case(
        delivered,
        {"capture": "on_approval"},
        ["capture_payment"],
        0,
        100_000,
        [S.RELEASED, S.CANCELLED],
    ),
    "disputed delivery: paid out as delivered work": Case(
        disputed_delivery, {}, [], 0, 100_000, [S.RELEASED, S.CANCELLED]
    ),
    "second milestone: only its money is refunded": Case(
        second_milestone_in_progress,
        {},
        ["refund_payment"],
        200_000,
        100_000,
        [S.RELEASED, S.CANCELLED],
    ),
}


def _closes_a_paid_session(deal: DealRun, arg: object) -> bool:
    """Closing the session that paid is part of funding, not a compensation."""
    session_id = getattr(arg, "session_id", None)
    return session_id is not None and deal.fake.sessions[session_id].status == "complete"


STRIPE_COMPENSATIONS = {
    "expire_checkout_session",
    "refund_payment",
    "cancel_authorization",
    "capture_payment",
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_cancel_compensates(env: WorkflowEnvironment, case: Case) -> None:
    async with running_deal(env, make_spec(milestones=2, **case.policy)) as deal:
        await case.reach(deal)
        before = len(deal.fake.calls)
        result = await deal.update(
            "cancel_deal", CancelDeal(reason="the client's budget was cut", requested_by="client")
        )
        final: DealStatus = await deal.result()
        await deal.replay()

    assert result.stage is DealStage.CANCELLED
    assert final.stage is DealStage.CANCELLED
    compensations = [
        c.name
        for c in deal.fake.calls[before:]
        if c.name in STRIPE_COMPENSATIONS and not _closes_a_paid_session(deal, c.arg)
    ]
    assert compensations == case.stripe_calls
    assert [m.state for m in final.milestones] == case.states
    assert (final.money.refunded, final.money.released, final.money.funded) == (
        case.refunded,
        case.released,
        0,
    )

    mails = deal.fake.mails(EmailKind.DEAL_CANCELLED)
    assert sorted(m.to for m in mails) == ["Ada@client.example", "vera@vendor.example"]
    refunds = mails[0].context["refunds"]
    assert [r["amount_display"] for r in refunds] == (
        [f"USD {case.refunded // 100:,}.00"] if case.refunded else []
    )
    assert mails[0].context["reason"] == "the client's budget was cut"
    [cancelled] = [e for e in final.timeline if e.kind == "cancelled"]
    assert cancelled.source == "client"


async def test_cancel_by_signal_runs_the_same_compensations(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        await in_progress(deal)
        await deal.handle.signal(
            DealWorkflow.cancel_deal_signal, CancelDeal(reason="operator call")
        )
        final = await deal.result()
    assert final.stage is DealStage.CANCELLED
    assert [r.purpose for r in deal.fake.args("refund_payment")] == ["cancel"]
    assert final.money.refunded == 100_000
