"""`dealflow demo` with six deals on the whole stack (dev server, Postgres, sandbox, SMTP sink,
worker, bridge): every deal ends as its story says, the story prints what a newcomer should see
(an ACH debit processing then funded, the platform fee on each payout, a chargeback's evidence
submitted before it was due, a deposit, a countersigned SOW with its certificate and a change
order signed mid-deal, each vendor with a key of its own), and the money Postgres recorded is, cent for cent, the money the
sandbox itself moved."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import timedelta

import pytest
from rich.console import Console

from chaos.money import ledger_money, mislabelled_payments, sandbox_money
from dealflow.messages import DealStage, MilestoneState
from demo import run as demo_run
from demo import watch
from demo.cast import DemoTarget
from demo.run import run_demo
from demo.scenarios import SILENT
from demo.tables import stories, summary
from devstack.stack import Stack
from stripe_sandbox.fees import card_fee, payment_fee
from tests.recorded import record_history


def assert_steps_in_order(steps: list[str], *parts: str) -> None:
    """Each part is said by a step after the one that said the part before."""
    start = 0
    for part in parts:
        at = next((i for i in range(start, len(steps)) if part in steps[i]), None)
        assert at is not None, f"no step saying {part!r} after step {start}: {steps}"
        start = at + 1


async def test_demo_plays_six_deals_and_the_ledger_matches_the_sandbox(stack: Stack) -> None:
    output = io.StringIO()
    report = await run_demo(DemoTarget.from_stack(stack), 6, console=Console(file=output, width=200), live=False)

    keys = ["revision", "cancel", "dispute", "chargeback", "marketplace", "terms"]
    assert [run.scenario.key for run in report.runs] == keys
    for run in report.runs:
        assert run.ok, f"{run.play.spec.deal_id}: {run.error}\n{run.play.steps}"
    revision, cancel, dispute, chargeback, marketplace, terms = (run.status for run in report.runs)
    assert revision is not None and cancel is not None and dispute is not None
    assert chargeback is not None and marketplace is not None and terms is not None
    steps = {run.scenario.key: run.play.steps for run in report.runs}
    printed = output.getvalue()
    assert all(step in printed for run in report.runs for step in run.play.steps)

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

    # The marketplace deal: ACH processing, settled, funded; each payout keeps 5 % + USD 25.00.
    integration, rollout = marketplace.milestones
    kinds = [e.kind for e in marketplace.timeline if e.milestone_key == "integration"]
    assert kinds.index("payment_processing") < kinds.index("funded")
    assert_steps_in_order(
        steps["marketplace"],
        "paid integration by ACH",
        "integration processing: USD 18,000.00 by ACH",
        "settled the debit",
        "integration funded",
        "integration released: gross USD 18,000.00 − platform fee USD 925.00 = vendor share USD 17,075.00",
        "rollout released: gross USD 3,500.00 − platform fee USD 200.00 = vendor share USD 3,300.00",
    )
    assert (integration.platform_fee, rollout.platform_fee) == (92_500, 20_000)
    assert marketplace.money.platform_fees == 112_500
    assert integration.transfer_id and rollout.transfer_id
    assert all(run.scenario.key == "marketplace" or "platform fee" not in " ".join(run.play.steps) for run in report.runs)

    # The chargeback: evidence went to Stripe before it was due, the bank decided for the vendor.
    disputed = chargeback.milestones[0]
    [submitted] = [e for e in chargeback.timeline if e.kind == "dispute_evidence_submitted"]
    assert submitted.milestone_key == disputed.key and "under_review" in submitted.message
    kinds = [e.kind for e in chargeback.timeline]
    assert kinds.index("dispute_funds_withdrawn") < kinds.index("dispute_funds_reinstated")
    assert_steps_in_order(
        steps["chargeback"],
        "charged back discovery's card payment (product_not_received)",
        "Stripe withdrew USD 4,500.00",
        "workflow submitted the deal's evidence",
        "decided the chargeback for the vendor: won",
        "funds reinstated: USD 4,500.00 back",
        "discovery released: USD 4,500.00 to the vendor",
    )
    assert "before it was due" in next(step for step in steps["chargeback"] if "submitted the deal's evidence" in step)
    assert chargeback.stage == DealStage.COMPLETED and chargeback.money.withdrawn == 0
    assert chargeback.money.released == chargeback.money.contract

    # The brand deal: a deposit released as paid, both signatures and the certificate, then a
    # change order (packaging re-priced, a launch kit added) the client signed as version 2.
    assert_steps_in_order(
        steps["terms"],
        "client signed the SOW",
        "vendor countersigned the SOW",
        "signing certificate issued and mailed to both parties",
        "deposit released as it was paid",
        "vendor proposed a change order: packaging USD 6,300.00 → USD 8,400.00, new milestone launch USD 2,400.00",
        "the contract is now USD 22,500.00",
        "signing certificate of version 2 mailed to both parties with the answer",
        "identity released",
        "launch released",
    )
    assert [s.party for s in terms.signatures[:2]] == ["client", "vendor"] and terms.certificate_sha256
    kept = await stack.pool.fetch(
        "SELECT sow_version FROM signing_certificates WHERE deal_id = $1 ORDER BY sow_version",
        terms.deal_id,
    )
    assert [row["sow_version"] for row in kept] == [1, 2]
    assert terms.sow_version == 2 and [v.state for v in terms.sow_versions] == ["superseded", "current"]
    assert [(m.key, m.amount) for m in terms.milestones] == [
        ("deposit", 360_000), ("identity", 810_000), ("packaging", 840_000), ("launch", 240_000)
    ]
    assert terms.money.released == terms.money.contract == 2_250_000
    assert sum(e.kind == "released" and e.milestone_key == "deposit" for e in terms.timeline) == 1
    assert not any(e.kind == "delivered" and e.milestone_key == "deposit" for e in terms.timeline)
    # Two vendors (four, in fact), each its own account: no two deals' vendors share an id.
    specs = {run.scenario.key: run.play.spec for run in report.runs}
    assert specs["terms"].vendor.vendor_id and specs["terms"].vendor.vendor_id != specs["revision"].vendor.vendor_id

    for run in report.runs:
        handle = stack.client.get_workflow_handle(f"deal-{run.play.spec.deal_id}")
        await record_history(handle, f"demo_{run.scenario.key}")

    # Every deal mailed its client a working portal link, and the summary names every deal.
    deal_ids = {run.play.spec.deal_id for run in report.runs}
    assert all(report.mails.get(deal_id, 0) > 0 for deal_id in deal_ids)
    assert report.portal_link is not None
    Console(file=output, width=200).print(summary(report, DemoTarget.from_stack(stack)))
    assert all(deal_id in output.getvalue() for deal_id in deal_ids)
    assert "USD 1,125.00" in output.getvalue(), "the marketplace deal's platform fees in the summary"
    # In a terminal the live table shows only each deal's latest step: the stories follow it.
    told = io.StringIO()
    Console(file=told, width=200).print(stories(report))
    assert all(f"{number}. {step}" in told.getvalue() for run in report.runs for number, step in enumerate(run.play.steps, 1))

    # The ledger is written by activities after the stage changes: wait for it to settle.
    expected = {
        **{(d.deal_id, "charge"): d.money.contract for d in (revision, dispute, chargeback, marketplace, terms)},
        (cancel.deal_id, "charge"): first.amount,
        (cancel.deal_id, "refund"): first.amount,
        # The vendor's shares went to their connected account; the platform fees stayed.
        (marketplace.deal_id, "transfer"): marketplace.money.contract - marketplace.money.platform_fees,
        # Stripe's card fee on each charge, kept by Stripe even when the charge is refunded.
        **{
            (d.deal_id, "stripe_fee"): sum(
                card_fee(m.captured, d.currency) for m in d.milestones if m.captured
            )
            for d in (revision, dispute, cancel, chargeback, terms)
        },
        (marketplace.deal_id, "stripe_fee"): payment_fee(integration.captured, "usd", "us_bank_account")
        + card_fee(rollout.captured, "usd"),
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


async def test_a_silent_client_whose_review_window_lapses_unseen_is_played_to_its_end(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review window can lapse before the people's watcher sees a milestone delivered (chaos
    seed 5: a worker and a Temporal outage longer than the window): the deal approves and
    releases it meanwhile, and the silent client's play goes on from there instead of waiting for
    a `delivered` that is over. A watcher polling every 1.5 s misses a 0.2 s window."""
    monkeypatch.setattr(watch, "POLL_INTERVAL", 1.5)
    lapsing = replace(SILENT, policy=SILENT.policy.model_copy(update={"review_window": timedelta(seconds=0.2)}))
    monkeypatch.setattr(demo_run, "scenarios_for", lambda count: [lapsing] * count)
    report = await run_demo(DemoTarget.from_stack(stack), 1, console=Console(file=io.StringIO()), live=False)

    (deal,) = report.runs
    assert deal.ok, f"{deal.error}\n{deal.play.steps}"
    assert deal.status is not None and deal.status.stage == DealStage.COMPLETED
    assert all(e.kind != "approved" or "review window" in e.message for e in deal.status.timeline)
