"""DealWorkflow's ledger: one batch per step, written beside the deal; a row Postgres refuses,
or a batch given up on, is an anomaly of the deal and never holds up the rows after it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from temporalio.testing import WorkflowEnvironment

from dealflow.messages import DealStage, LedgerBatch, PaymentKind
from tests.deal_harness import make_spec, running_deal
from tests.fakes import FakeActivities
from workflows.deal.context import DealContext


async def test_every_step_writes_one_batch_and_the_ledger_matches_the_timeline(
    env: WorkflowEnvironment,
) -> None:
    async with running_deal(env, make_spec(milestones=1)) as deal:
        final = await deal.complete()
        await deal.replay()

    batches: list[LedgerBatch] = deal.fake.args("write_ledger")
    assert all(b.events or b.payments or b.snapshot for b in batches), "no empty batch"
    assert not deal.fake.args("record_event"), "new deals never write row by row"
    assert sorted(deal.fake.ledger_events) == sorted(
        f"{deal.spec.workflow_id}:{n}" for n in range(1, len(final.timeline) + 1)
    )
    assert deal.fake.snapshots[-1].stage is DealStage.COMPLETED
    assert [s.version for s in deal.fake.snapshots] == sorted({s.version for s in deal.fake.snapshots})


@pytest.mark.parametrize("capture", ["on_funding", "on_approval"])
async def test_each_charge_keeps_the_fee_and_net_its_payment_was_read_with(
    env: WorkflowEnvironment, capture: str
) -> None:
    """Captured when paid (read once) or on approval (the capture's own answer): either way the
    ledger's charge carries Stripe's fee and net; nothing else does."""
    async with running_deal(env, make_spec(milestones=2, capture=capture)) as deal:
        await deal.complete()

    payments = deal.fake.payments.values()
    charges = sorted((p.milestone_key, p.amount, p.fee, p.net, p.fee_currency)
                     for p in payments if p.kind is PaymentKind.CHARGE)  # fmt: skip
    # 2.9 % + 0.30 of 1,000.00 and of 2,000.00
    assert charges == [
        ("m1", 100_000, 2_930, 97_070, "usd"),
        ("m2", 200_000, 5_830, 194_170, "usd"),
    ]
    assert all(p.fee is None for p in payments if p.kind is not PaymentKind.CHARGE)


async def test_a_refused_row_is_an_anomaly_and_the_rows_after_it_are_written(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeActivities(refused_events=lambda e: e.kind == "signed")
    async with running_deal(env, make_spec(milestones=1), fake) as deal:
        final = await deal.complete()

    assert final.stage is DealStage.COMPLETED
    assert len(final.anomalies) == 1
    assert "quarantined" in final.anomalies[0] and "DataError" in final.anomalies[0]
    kinds = {e.kind for e in fake.ledger_events.values()}
    assert "signed" not in kinds
    assert {"funded", "delivered", "approved", "released", "completed"} <= kinds


async def test_a_batch_given_up_on_is_an_anomaly_and_the_deal_goes_on(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeActivities()
    fake.fail(
        "write_ledger", "LedgerRejected", lambda b: any(e.kind == "funded" for e in b.events)
    )
    async with running_deal(env, make_spec(milestones=1), fake) as deal:
        final = await deal.complete()

    assert final.stage is DealStage.COMPLETED
    assert [a for a in final.anomalies if a.startswith("Ledger batch not written")]
    assert "completed" in {e.kind for e in fake.ledger_events.values()}


async def test_a_step_the_garbage_collector_closes_hands_nothing_to_the_ledger() -> None:
    """A deal the worker let go while a step beside it waited leaves that coroutine to the
    garbage collector, which closes it outside any workflow: flushing there raised "no running
    event loop" (printed as an ignored exception). A step that ends still flushes."""
    flushes: list[str] = []
    deal = SimpleNamespace(journal=SimpleNamespace(flush=lambda: flushes.append("flush")))

    step = DealContext.flushed(deal, asyncio.Event().wait())  # type: ignore[arg-type]
    step.send(None)  # the step waits
    step.close()  # as the garbage collector closes it
    assert flushes == []

    async def ends() -> None:
        return None

    await DealContext.flushed(deal, ends())  # type: ignore[arg-type]
    assert flushes == ["flush"]
