"""DealWorkflow end to end on the time-skipping server: three milestones from SOW to receipts."""

from __future__ import annotations

import base64

from temporalio.testing import WorkflowEnvironment

from dealflow.contract import DEAL_AMOUNT_CENTS, DEAL_CLIENT, DEAL_COLLECTED_CENTS, DEAL_STAGE
from dealflow.messages import (
    Artifact,
    DealStage,
    EmailKind,
    MilestoneState,
    PaymentKind,
)
from tests.deal_harness import make_spec, running_deal

ARTIFACT = Artifact(name="site.zip", url="https://files.vendor.example/site.zip", sha256="a" * 64)


async def test_three_milestones_from_sow_to_receipts(env: WorkflowEnvironment) -> None:
    spec = make_spec(
        vendor={
            "stripe_account": "acct_vendor1",
            "fulfillment_url": "https://vendor.example/orders",
        }
    )
    async with running_deal(env, spec) as deal:
        await deal.wait_calls("the SOW mail", lambda f: f.mails(EmailKind.SOW_SENT))
        sow_mail = deal.fake.mails(EmailKind.SOW_SENT)[0]
        assert sow_mail.to == "Ada@client.example"
        assert sow_mail.context["total_display"] == "USD 6,000.00"

        status = await deal.sign()
        assert status.signature and status.signature.signer_name == "Ada Client"
        assert status.signature.ip == "203.0.113.9"

        for milestone in spec.milestones:
            await deal.fund(milestone.key)
            await deal.deliver(milestone.key, artifacts=[ARTIFACT])
            await deal.approve(milestone.key)

        final = await deal.result()
        await deal.replay()
        history_length = len((await deal.handle.fetch_history()).events)

    fake = deal.fake
    assert final.stage is DealStage.COMPLETED
    assert [m.state for m in final.milestones] == [MilestoneState.RELEASED] * 3
    assert final.money.funded == 0
    assert final.money.released == final.money.contract == 600_000
    assert final.money.refunded == 0
    assert final.anomalies == []
    assert final.next_deadline is None
    assert history_length < 2_000, f"history of {history_length} events"

    # Stripe: one session per milestone, automatic capture, a transfer on each release
    sessions = fake.args("create_checkout_session")
    assert [(s.milestone_key, s.generation, s.capture_method.value) for s in sessions] == [
        ("m1", 1, "automatic"),
        ("m2", 1, "automatic"),
        ("m3", 1, "automatic"),
    ]
    assert [t.amount for t in fake.args("transfer_to_vendor")] == [100_000, 200_000, 300_000]
    assert not fake.args("refund_payment") and not fake.args("capture_payment")

    # ledger: charges and transfers, one event row per timeline entry, the final snapshot
    kinds = sorted((p.milestone_key, p.kind.value) for p in fake.payments.values())
    assert kinds == sorted(
        (m, kind) for m in ("m1", "m2", "m3") for kind in (PaymentKind.CHARGE, PaymentKind.TRANSFER)
    )
    assert len(fake.ledger_events) == len(final.timeline)
    assert fake.snapshots[-1].stage is DealStage.COMPLETED
    assert fake.snapshots[-1].released == 600_000

    # the vendor got a work order (mail and signed POST) per milestone, the client a receipt
    assert [w.milestone_key for w in fake.args("dispatch_work_order")] == ["m1", "m2", "m3"]
    assert len(fake.mails(EmailKind.WORK_ORDER, to="vera@vendor.example")) == 3
    receipts = fake.mails(EmailKind.APPROVED_RECEIPT)
    assert len(receipts) == 3
    attachment = receipts[0].attachments[0]
    assert (
        attachment.filename.startswith("receipt-R-")
        and attachment.content_type == "application/pdf"
    )
    assert base64.b64decode(attachment.content_b64).startswith(b"%PDF")
    assert len(fake.mails(EmailKind.PAYOUT_SENT)) == 3
    assert [d.milestone_key for d in fake.args("deliver_artifacts")] == ["m1", "m2", "m3"]
    completed = fake.mails(EmailKind.DEAL_COMPLETED)
    assert sorted(m.to for m in completed) == ["Ada@client.example", "vera@vendor.example"]
    message_keys = [m.message_key for m in fake.mails()]
    assert len(message_keys) == len(set(message_keys)), "every logical mail has its own key"


async def test_search_attributes_follow_the_deal(env: WorkflowEnvironment) -> None:
    spec = make_spec(milestones=2)
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await deal.fund("m1")
        attributes = (await deal.handle.describe()).typed_search_attributes
        assert attributes.get(DEAL_STAGE) == "in_progress"
        assert attributes.get(DEAL_CLIENT) == "ada@client.example"
        assert attributes.get(DEAL_AMOUNT_CENTS) == 300_000
        assert attributes.get(DEAL_COLLECTED_CENTS) == 100_000
        assert await (await deal.handle.describe()).memo_value("title") == "Marketing site"


async def test_the_platform_fee_is_kept_back_from_each_payout(env: WorkflowEnvironment) -> None:
    spec = make_spec(
        milestones=2,
        vendor={"stripe_account": "acct_vendor1"},
        platform_fee_bps=250,
        platform_fee_fixed=30,
    )
    async with running_deal(env, spec) as deal:
        final = await deal.complete()
        await deal.replay()

    fake = deal.fake
    # 2.5 % + 0.30 of 1,000.00 and of 2,000.00
    assert [(m.released, m.platform_fee) for m in final.milestones] == [
        (100_000, 2_530),
        (200_000, 5_030),
    ]
    assert final.money.released == 300_000 and final.money.platform_fees == 7_560
    transfers = fake.args("transfer_to_vendor")
    assert [(t.amount, t.source_transaction) for t in transfers] == [
        (97_470, f"ch_{final.milestones[0].payment_intent_id}"),
        (194_970, f"ch_{final.milestones[1].payment_intent_id}"),
    ]
    fees = sorted(
        (p.milestone_key, p.amount) for p in fake.payments.values() if p.kind is PaymentKind.PLATFORM_FEE
    )
    assert fees == [("m1", 2_530), ("m2", 5_030)]
    released = [e.message for e in final.timeline if e.kind == "released"]
    assert "the platform kept USD 25.30, the vendor gets USD 974.70" in released[0]
    assert [r.platform_fee for r in fake.args("issue_receipt")] == [2_530, 5_030]
    payout = fake.mails(EmailKind.PAYOUT_SENT)[0]
    assert (payout.context["platform_fee_display"], payout.context["vendor_share_display"]) == (
        "USD 25.30",
        "USD 974.70",
    )
