"""`dealflow demo` with three deals on the whole stack (dev server, Postgres, sandbox, SMTP sink,
worker, bridge): every deal ends as its story says, and the money Postgres recorded is, cent for
cent, the money the sandbox itself moved."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console

from chaos.money import ledger_money, mislabelled_payments, sandbox_money
from dealflow.messages import DealStage, MilestoneState
from demo.cast import DemoTarget
from demo.run import run_demo
from demo.tables import summary
from devstack.stack import Stack
from stripe_sandbox.fees import card_fee
from tests.recorded import record_history


async def test_demo_plays_three_deals_and_the_ledger_matches_the_sandbox(stack: Stack) -> None:
    output = io.StringIO()
    report = await run_demo(DemoTarget.from_stack(stack), 3, console=Console(file=output, width=200), live=False)

    assert [run.scenario.key for run in report.runs] == ["revision", "cancel", "dispute"]
    for run in report.runs:
        assert run.ok, f"{run.play.spec.deal_id}: {run.error}\n{run.play.steps}"
    revision, cancel, dispute = (run.status for run in report.runs)
    assert revision is not None and cancel is not None and dispute is not None

    assert revision.stage == DealStage.COMPLETED
    assert revision.money.released == revision.money.contract and revision.money.refunded == 0
    assert revision.milestones[0].revisions == 1
    assert {m.state for m in revision.milestones} == {MilestoneState.RELEASED}

    first = cancel.milestones[0]
    assert cancel.stage == DealStage.CANCELLED
    assert cancel.money.released == 0 and cancel.money.refunded == first.amount == first.refunded

    assert dispute.stage == DealStage.COMPLETED
    assert dispute.money.released == dispute.money.contract
    assert any("dispute" in entry.kind for entry in dispute.timeline)

    for run in report.runs:
        handle = stack.client.get_workflow_handle(f"deal-{run.play.spec.deal_id}")
        await record_history(handle, f"demo_{run.scenario.key}")

    # Every deal mailed its client a working portal link, and the summary names every deal.
    deal_ids = {run.play.spec.deal_id for run in report.runs}
    assert all(report.mails.get(deal_id, 0) > 0 for deal_id in deal_ids)
    assert report.portal_link is not None
    Console(file=output, width=200).print(summary(report, DemoTarget.from_stack(stack)))
    assert all(deal_id in output.getvalue() for deal_id in deal_ids)

    # The ledger is written by activities after the stage changes: wait for it to settle.
    expected = {
        **{(d.deal_id, "charge"): d.money.contract for d in (revision, dispute)},
        (cancel.deal_id, "charge"): first.amount,
        (cancel.deal_id, "refund"): first.amount,
        # Stripe's card fee on each charge, kept by Stripe even when the charge is refunded.
        **{
            (d.deal_id, "stripe_fee"): sum(
                card_fee(m.captured, d.currency) for m in d.milestones if m.captured
            )
            for d in (revision, dispute, cancel)
        },
    }
    deadline = asyncio.get_running_loop().time() + 30
    while (ledger := await ledger_money(stack.pool, deal_ids)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert ledger == expected
    assert not await mislabelled_payments(stack.pool, deal_ids), "sandbox money recorded as other money"
    async with stack.sandbox_control() as sandbox:
        assert ledger == await sandbox_money(sandbox, deal_ids)
