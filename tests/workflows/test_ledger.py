"""DealWorkflow's ledger: one batch per step, written beside the deal; a row Postgres refuses,
or a batch given up on, is an anomaly of the deal and never holds up the rows after it."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from dealflow.messages import DealStage, LedgerBatch
from tests.deal_harness import make_spec, running_deal
from tests.fakes import FakeActivities


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
