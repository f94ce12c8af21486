"""Change orders on the time-skipping server: proposed by the operator or the vendor, accepted
with a signature or declined by the client, numbered versions, and milestones with money held
never changed."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from dealflow.contract import DEAL_AMOUNT_CENTS, EventKind
from dealflow.messages import (
    AcceptAmendment,
    ActionResult,
    DealStage,
    DealStatus,
    DeclineAmendment,
    EmailKind,
    MilestoneState,
    ProposeAmendment,
    SignSow,
)
from dealflow.models import DealSpec
from dealflow.versions import terms_document, version_sha256
from tests.deal_harness import DealRun, make_spec, running_deal


def terms(spec: DealSpec, *changes: dict[str, Any], drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The spec's milestones without `drop`, each change merged into the milestone of its key
    (a new key is added at the end)."""
    milestones = {m.key: m.model_dump(exclude_none=True) for m in spec.milestones if m.key not in drop}
    for change in changes:
        milestones[change["key"]] = {**milestones.get(change["key"], {}), **change}
    return list(milestones.values())


def proposal(milestones: list[dict[str, Any]], **fields: Any) -> ProposeAmendment:
    return ProposeAmendment.model_validate({"reason": "scope change", "milestones": milestones, **fields})


def acceptance(deal_status_version: int, sha: str | None = None, **fields: Any) -> AcceptAmendment:
    return AcceptAmendment(
        version=deal_status_version, signer_name="Ada Client", consent=True, sow_sha256=sha,
        ip="203.0.113.7", user_agent="amend-agent", **fields,
    )


async def proposed_version(deal: DealRun, number: int) -> str:
    status = await deal.status()
    version = next(v for v in status.sow_versions if v.number == number)
    return version.sow_sha256


async def test_a_change_order_re_prices_removes_and_adds_milestones_once_accepted(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=3)
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await deal.fund("m1")
        new_sow = spec.sow + " Plus a blog section."
        answer = await deal.update(
            "propose_amendment",
            proposal(
                terms(spec, {"key": "m2", "amount": 250_000}, {"key": "m4", "title": "Blog", "amount": 50_000, "due_in_days": 40}, drop=("m3",)),
                sow=new_sow, proposed_by="vendor",
            ),
        )
        assert answer.message == "Version 2 proposed; the client is asked to accept or decline it."
        status = await deal.status()
        assert [(v.number, v.state) for v in status.sow_versions] == [(1, "current"), (2, "proposed")]
        assert status.money.contract == 600_000
        sha = await proposed_version(deal, 2)
        changed = [m for m in status.sow_versions[1].milestones]
        assert sha == version_sha256(2, new_sow, changed, "usd")

        wrong = await deal.rejected("accept_amendment", acceptance(2, "b" * 64))
        assert wrong.startswith("sow_sha256: the terms you saw are not version 2's")
        no_consent = await deal.rejected("accept_amendment", acceptance(2, sha).model_copy(update={"consent": False}))
        assert no_consent == "consent: the signer must consent to sign electronically"
        accepted = await deal.update("accept_amendment", acceptance(2, sha))
        assert accepted.message == "Version 2 is in force: thank you."

        status = await deal.status()
        assert status.sow_version == 2 and status.sow_sha256 == sha
        assert [(v.number, v.state, v.superseded_by) for v in status.sow_versions] == [
            (1, "superseded", 2), (2, "current", None)
        ]
        assert [(m.key, m.state, m.amount) for m in status.milestones] == [
            ("m1", MilestoneState.IN_PROGRESS, 100_000),
            ("m2", MilestoneState.PENDING, 250_000),
            ("m4", MilestoneState.PENDING, 50_000),
            ("m3", MilestoneState.CANCELLED, 300_000),
        ]
        assert status.money.contract == 400_000
        assert [(s.sow_version, s.sow_sha256, s.user_agent) for s in status.signatures][-1] == (2, sha, "amend-agent")

        await deal.deliver("m1")
        await deal.approve("m1")
        for key in ("m2", "m4"):
            await deal.fund(key)
            await deal.deliver(key)
            await deal.approve(key)
        final = await deal.result()
        await deal.replay()
        attributes = (await deal.handle.describe()).typed_search_attributes

    assert final.stage is DealStage.COMPLETED
    assert final.money.released == 400_000
    assert attributes.get(DEAL_AMOUNT_CENTS) == 400_000
    sessions = deal.fake.args("create_checkout_session")
    assert [(s.milestone_key, s.amount) for s in sessions] == [("m1", 100_000), ("m2", 250_000), ("m4", 50_000)]
    mail = deal.fake.mails(EmailKind.AMENDMENT_PROPOSED)[0]
    assert mail.to == "Ada@client.example"
    assert mail.context["proposed_by"] == "vendor"
    assert mail.context["total_after"] == "USD 4,000.00"
    assert {c["key"] for c in mail.context["changes"]} == {"m2", "m3", "m4", "SOW text"}
    answered = deal.fake.mails(EmailKind.AMENDMENT_ANSWERED)
    assert sorted(m.to for m in answered) == ["Ada@client.example", "vera@vendor.example"]
    assert "Milestones:\n- m1: Milestone 1, USD 1,000.00" in terms_document(new_sow, changed, "usd")
    kept = {e.kind: e.detail for e in deal.fake.ledger_events.values()}
    assert kept["sow_sent"]["sow"] == spec.sow and kept["sow_sent"]["sow_version"] == 1
    assert kept["amendment_proposed"]["version"]["sow"] == new_sow
    assert kept["amendment_proposed"]["version"]["sow_sha256"] == final.sow_sha256
    assert kept["amendment_accepted"]["signature"]["sow_version"] == 2
    assert kept["amendment_accepted"]["signature"]["ip"] == "203.0.113.7"


async def test_funded_milestones_never_change_and_answers_go_to_the_version_asked(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=2)
    async with running_deal(env, spec) as deal:
        early = await deal.rejected("propose_amendment", proposal(terms(spec, {"key": "m2", "amount": 1_000})))
        assert early == "the statement of work is not signed yet; an amendment changes a signed deal"
        await deal.sign()
        await deal.fund("m1")
        funded = await deal.rejected("propose_amendment", proposal(terms(spec, {"key": "m1", "amount": 1_000})))
        assert funded == "milestones: 'Milestone 1' is in_progress; an amendment cannot change or remove it (give it unchanged)"
        removed = await deal.rejected("propose_amendment", proposal(terms(spec, drop=("m1",))))
        assert removed.startswith("milestones: 'Milestone 1' is in_progress")
        same = await deal.rejected("propose_amendment", proposal(terms(spec)))
        assert same == "the proposed terms are the terms in force; nothing would change"
        twice = [*terms(spec, {"key": "m2", "amount": 1_000}), terms(spec)[1]]
        bad = await deal.rejected("propose_amendment", proposal(twice))
        assert bad == "milestones: Value error, milestone key 'm2' is used twice; keys must be unique"

        await deal.update("propose_amendment", proposal(terms(spec, {"key": "m2", "amount": 150_000})))
        await deal.update("propose_amendment", proposal(terms(spec, {"key": "m2", "amount": 180_000})))
        superseded = await deal.rejected("accept_amendment", acceptance(2))
        assert superseded == "version 2 is superseded by version 3"
        unknown = await deal.rejected("decline_amendment", DeclineAmendment(version=7))
        assert unknown == "version: this deal has no version 7 (it has 1 to 3)"
        declined = await deal.update("decline_amendment", DeclineAmendment(version=3, reason="too dear"))
        assert declined.message == "Version 3 declined; version 1 stays in force."
        again = await deal.rejected("accept_amendment", acceptance(3))
        assert again == "version 3 is declined; no answer is awaited"
        status = await deal.status()
        await deal.replay()

    assert [(v.number, v.state) for v in status.sow_versions] == [(1, "current"), (2, "superseded"), (3, "declined")]
    assert [m.amount for m in status.milestones] == [100_000, 200_000]
    assert "Amendment version 3 declined: too dear" in [e.message for e in status.timeline]


async def amended_while_its_link_is_out(
    env: WorkflowEnvironment, spec: DealSpec, change: dict[str, Any]
) -> tuple[DealRun, DealStatus]:
    """The deal signed, `change` to m1 accepted while its first link is out, m1 paid on the
    link that replaced it; the deal and its status once m1 is in progress (replayed)."""
    async with running_deal(env, spec) as deal:
        await deal.sign()
        first = await deal.session_of("m1")
        await deal.update("propose_amendment", proposal(terms(spec, {"key": "m1", **change})))
        await deal.update("accept_amendment", acceptance(2, await proposed_version(deal, 2)))
        await deal.session_of("m1", generation=2)
        await deal.wait_calls("the first link expired", lambda f: f.args("expire_checkout_session"))
        await deal.pay("m1", generation=2)
        status = await deal.milestone_state("m1", MilestoneState.IN_PROGRESS)
        await deal.replay()
    assert deal.fake.args("expire_checkout_session")[0].session_id == first
    return deal, status


async def test_a_re_priced_milestone_awaiting_funding_gets_a_new_payment_link(
    env: WorkflowEnvironment,
) -> None:
    deal, status = await amended_while_its_link_is_out(env, make_spec(milestones=1), {"amount": 90_000})

    assert [s.amount for s in deal.fake.args("create_checkout_session")] == [100_000, 90_000]
    assert status.money.funded == 90_000
    assert status.money.contract == 90_000


async def test_a_re_titled_milestone_awaiting_funding_gets_a_link_under_its_new_title(
    env: WorkflowEnvironment,
) -> None:
    """The client pays under the title they signed (Checkout shows it, and Stripe's receipt).
    Before CHANGE_ORDERS_AMENDED the link kept the old title: tests/histories/v8_retitled_milestone.json
    replays that path."""
    spec = make_spec(milestones=1)
    new_title = "Logo concepts, three of them"
    deal, status = await amended_while_its_link_is_out(env, spec, {"title": new_title})

    links = deal.fake.args("create_checkout_session")
    assert [(s.title, s.amount) for s in links] == [
        (f"{spec.title}: {spec.milestones[0].title}", 100_000),
        (f"{spec.title}: {new_title}", 100_000),
    ]
    assert status.money.funded == 100_000


async def test_a_re_dated_milestone_awaiting_funding_keeps_its_link_and_moves_its_late_fee(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=1, late_fee={"fixed": 5_000, "grace": "2d"}, fund_window="90d")
    async with running_deal(env, spec) as deal:
        await deal.sign()
        first = await deal.session_of("m1")
        before = (await deal.wait_for("the late fee planned", lambda s: s.milestones[0].next_late_fee_at)).milestones[0]
        await deal.update("propose_amendment", proposal(terms(spec, {"key": "m1", "due_in_days": 40})))
        await deal.update("accept_amendment", acceptance(2, await proposed_version(deal, 2)))
        after = (
            await deal.wait_for(
                "the late fee planned again",
                lambda s: s.milestones[0].next_late_fee_at not in (None, before.next_late_fee_at),
            )
        ).milestones[0]
        assert await deal.session_of("m1") == first
        await deal.pay("m1")
        status = await deal.milestone_state("m1", MilestoneState.IN_PROGRESS)
        await deal.replay()

    assert before.payment_due_at and after.payment_due_at and before.next_late_fee_at and after.next_late_fee_at
    assert after.payment_due_at - before.payment_due_at == timedelta(days=30)
    assert after.next_late_fee_at - before.next_late_fee_at == timedelta(days=30)
    assert len(deal.fake.args("create_checkout_session")) == 1 and not deal.fake.args("expire_checkout_session")
    assert status.money.funded == 100_000 and status.money.late_fees == 0


async def re_price_m2_accepted(deal: DealRun, spec: DealSpec) -> ActionResult:
    """A change order re-pricing m2, accepted; the answer, once both parties have it by mail."""
    await deal.update("propose_amendment", proposal(terms(spec, {"key": "m2", "amount": 250_000})))
    answer = await deal.update("accept_amendment", acceptance(2, await proposed_version(deal, 2)))
    await deal.wait_calls("the answer to both", lambda f: len(f.mails(EmailKind.AMENDMENT_ANSWERED)) == 2)
    return answer


async def test_a_countersigned_deals_accepted_change_order_has_its_own_signing_certificate(
    env: WorkflowEnvironment,
) -> None:
    """As the first signing of a countersigned deal: the version the client accepts is certified
    (their signature of it), kept in the ledger, and attached to the answer both parties get.
    Before CHANGE_ORDERS_AMENDED the answer came without one: tests/histories/v10_demo_terms.json
    replays that path."""
    spec = DealSpec.model_validate(
        {**make_spec(milestones=2).model_dump(), "signing_order": ["vendor", "client"]}
    )
    async with running_deal(env, spec) as deal:
        await deal.update("sign_sow", SignSow(signer_name="Vera Vendor", consent=True, party="vendor"))
        await deal.update("sign_sow", SignSow(signer_name="Ada Client", consent=True, party="client"))
        first = await deal.wait_for("the first certificate", lambda s: s.certificate_sha256 is not None)
        answer = await re_price_m2_accepted(deal, spec)
        status = await deal.status()
        await deal.replay()

    assert answer.message == "Version 2 is in force: thank you. Its signing certificate is on its way by mail."
    v1, v2 = deal.fake.args("issue_signing_certificate")
    assert v1.sow_version == 1 and [s.party for s in v1.signatures] == ["vendor", "client"]
    version_2 = next(v for v in status.sow_versions if v.number == 2)
    assert (v2.sow_version, v2.sow_sha256) == (2, version_2.sow_sha256)
    assert [(s.party, s.sow_version, s.user_agent) for s in v2.signatures] == [("client", 2, "amend-agent")]
    assert v2.completed_at == v2.signatures[0].signed_at
    assert status.certificate_sha256 not in (None, first.certificate_sha256)

    for mail in deal.fake.mails(EmailKind.AMENDMENT_ANSWERED):
        (attachment,) = mail.attachments
        pdf = base64.b64decode(attachment.content_b64)
        assert hashlib.sha256(pdf).hexdigest() == status.certificate_sha256
        assert attachment.filename == f"signing-certificate-{spec.deal_id}-v2.pdf"
        assert mail.context["certificate_sha256"] == status.certificate_sha256
    kept = [e.detail for e in deal.fake.ledger_events.values() if e.kind == EventKind.SIGNING_CERTIFICATE]
    assert sorted(d["sow_version"] for d in kept) == [1, 2]
    assert len(deal.fake.mails(EmailKind.SOW_SIGNED)) == 2  # the first signing's, to both


async def test_a_change_order_answer_in_a_deal_signed_by_the_client_alone_has_no_certificate(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=2)
    async with running_deal(env, spec) as deal:
        await deal.sign()
        await re_price_m2_accepted(deal, spec)
        await deal.replay()

    assert deal.fake.args("issue_signing_certificate") == []
    for mail in deal.fake.mails(EmailKind.AMENDMENT_ANSWERED):
        assert mail.attachments == [] and mail.context["certificate_sha256"] is None
