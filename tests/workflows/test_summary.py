"""The `summary` query: what `status` says about the stage, the milestones and the money, and
nothing of the timeline, at each step of a deal."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import DealStatus, DealSummary, MilestoneState
from tests.deal_harness import DealRun, make_spec, running_deal


def _as_summarised(status: DealStatus) -> dict:
    return {
        "deal_id": status.deal_id,
        "stage": status.stage,
        "currency": status.currency,
        "milestones": [
            {
                "key": m.key,
                "state": m.state,
                "amount": m.amount,
                "funded": m.funded,
                "checkout_session_id": m.checkout_session_id,
                "payment_intent_id": m.payment_intent_id,
            }
            for m in status.milestones
        ],
        "money": status.money.model_dump(),
        "next_deadline": status.next_deadline.model_dump() if status.next_deadline else None,
        "anomalies": len(status.anomalies),
    }


async def _pay_link(deal: DealRun, index: int) -> None:
    """Wait out the Checkout Session being made, so both queries see the deal at rest."""
    await deal.wait_for("a pay link", lambda s: s.milestones[index].checkout_session_id is not None)


async def _agree(deal: DealRun) -> DealSummary:
    summary, status = await deal.summary(), await deal.status()
    assert summary.model_dump() == _as_summarised(status)
    return summary


async def test_the_summary_follows_the_deal_step_by_step(env: WorkflowEnvironment) -> None:
    async with running_deal(env, make_spec(milestones=2)) as deal:
        started = await _agree(deal)
        assert started.next_deadline is not None and started.anomalies == 0
        await deal.sign()
        await _pay_link(deal, 0)
        awaiting = await _agree(deal)
        assert awaiting.milestones[0].checkout_session_id is not None
        intent = await deal.fund("m1")
        funded = await _agree(deal)
        assert funded.milestones[0].state is MilestoneState.IN_PROGRESS
        assert (funded.milestones[0].payment_intent_id, funded.money.funded) == (
            intent.payment_intent_id,
            100_000,
        )
        await deal.deliver("m1")
        await deal.approve("m1")
        await _pay_link(deal, 1)
        released = await _agree(deal)
        assert released.money.released == 100_000
        assert [m.state for m in released.milestones] == [
            MilestoneState.RELEASED,
            MilestoneState.AWAITING_FUNDING,
        ]
        assert len(released.model_dump_json()) < len((await deal.status()).model_dump_json()) / 4
