"""The stories the demo's people play out, one deal each: a client, a vendor, an operator and
the client's bank, each step said as it happens."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dealflow.contract import EventKind
from dealflow.messages import (
    DealStage,
    DealStatus,
    DisputeResolution,
    MilestoneState,
    MilestoneStatus,
    MilestoneSummary,
)
from dealflow.models import DealSpec, Milestone, PaymentMethod
from dealflow.money import format_money
from demo.actors import DemoBank, DemoClient, DemoOperator, DemoVendor
from demo.http import DemoStepFailed
from demo.specs import SILENT_REVIEW_WINDOW
from demo.watch import DealWatch
from stripe_sandbox.control import TEST_ACH_PAYS

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"

#: Why the chargeback scenario's client says they disputed the payment at their bank.
CHARGEBACK_REASON = "product_not_received"


@dataclass
class Play:
    """Everything one deal's story needs: its spec, its people, its watch and a narrator."""

    spec: DealSpec
    client: DemoClient
    vendor: DemoVendor
    operator: DemoOperator
    bank: DemoBank
    watch: DealWatch
    steps: list[str] = field(default_factory=list)
    #: Called with each step as it happens (the demo prints them when there is no live table).
    on_step: Callable[[str, str], None] | None = None

    def say(self, step: str) -> None:
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(self.spec.deal_id, step)

    @property
    def first(self) -> str:
        return self.spec.milestones[0].key

    def money(self, amount: int) -> str:
        return format_money(amount, self.spec.currency)

    def milestone_now(self, key: str) -> MilestoneSummary:
        """The milestone as the deal's latest summary has it."""
        assert self.watch.summary is not None
        return next(m for m in self.watch.summary.milestones if m.key == key)


async def sign(play: Play) -> None:
    await play.watch.stage(DealStage.SOW_SENT)
    await play.client.sign()
    play.say("client signed the SOW in the portal")


async def pay_link(play: Play, key: str) -> None:
    await play.watch.until(
        f"a pay link for {key}",
        lambda s: any(
            m.key == key and m.state == MilestoneState.AWAITING_FUNDING and m.checkout_session_id
            for m in s.milestones
        ),
    )


async def funded(play: Play, key: str) -> None:
    await play.watch.milestone(key, MilestoneState.FUNDED, MilestoneState.IN_PROGRESS, what=f"{key} to be funded")


async def fund(play: Play, key: str, cards: Sequence[str] = (CARD_OK,)) -> None:
    await pay_link(play, key)
    outcomes = await play.client.pay(key, cards)
    play.say(f"client: {', then '.join(outcomes)}")
    await funded(play, key)


async def fund_by_ach(play: Play, key: str) -> None:
    """The client pays by ACH debit: the milestone is processing until the bank settles it
    (here at once, by the sandbox's control, instead of after the business days)."""
    await pay_link(play, key)
    await play.client.pay_by_bank(key, PaymentMethod.US_BANK_ACCOUNT, TEST_ACH_PAYS)
    play.say(f"client: paid {key} by ACH bank debit (account …{TEST_ACH_PAYS[-4:]})")
    await play.watch.milestone(key, MilestoneState.PROCESSING)
    debit = await play.watch.milestone_status(key)
    if debit.processing_intent_id is None or debit.processing_until is None:
        raise DemoStepFailed(f"{key} is processing without its bank debit: {debit}")
    play.say(
        f"{key} processing: {play.money(debit.amount)} by ACH, which Stripe confirms within "
        f"{play.spec.policy.us_bank_account_days} business days (by {debit.processing_until:%Y-%m-%d})"
    )
    await play.bank.settle_debit(debit.processing_intent_id)
    play.say(f"client's bank settled the debit {debit.processing_intent_id} (the sandbox's control skips the business days)")
    await funded(play, key)
    play.say(f"{key} funded: Stripe said checkout.session.async_payment_succeeded")


def split(play: Play, m: MilestoneStatus) -> str:
    """How a released milestone's money was shared between the platform and the vendor."""
    if not m.platform_fee:
        return f"{play.money(m.released)} to the vendor"
    return (
        f"gross {play.money(m.released)} − platform fee {play.money(m.platform_fee)} "
        f"= vendor share {play.money(m.released - m.platform_fee)}"
    )


async def released(play: Play, key: str, how: str, what: str = "") -> None:
    """Wait for `key`'s payout, then say `how` it was released and how its money was shared."""
    await play.watch.milestone(key, MilestoneState.RELEASED, what=what or f"{key} to be released")
    play.say(f"{how}: {split(play, await play.watch.milestone_status(key))}")


#: What a milestone handed in to a silent client is once the watcher sees it: its review window
#: may lapse before then (an outage of the worker or of Temporal longer than the window), and
#: the deal approves and releases it meanwhile.
HANDED_IN_TO_SILENCE = (MilestoneState.DELIVERED, MilestoneState.APPROVED, MilestoneState.RELEASED)


async def work(
    play: Play, key: str, revision: int = 0, handed_in: tuple[MilestoneState, ...] = (MilestoneState.DELIVERED,)
) -> None:
    """The vendor waits for the work order, then hands in the milestone's file."""
    order = await play.vendor.wait_for_work_order(play.spec.deal_id, key, revision, play.watch.timeout)
    await play.watch.milestone(key, MilestoneState.IN_PROGRESS)
    summary = f"{order['title']}: done" + (f", revised as asked ({order['notes']})" if revision else "")
    await play.vendor.deliver(play.spec.deal_id, key, revision, summary)
    play.say(f"vendor delivered {key}" + (f" (revision {revision})" if revision else ""))
    await play.watch.milestone(key, *handed_in, what=f"{key} to be delivered")


async def approve(play: Play, key: str) -> None:
    await play.client.approve(key)
    play.say(f"client approved {key}")
    await released(play, key, f"{key} released")


async def milestone(play: Play, key: str) -> None:
    await fund(play, key)
    await work(play, key)
    await approve(play, key)


async def the_rest(play: Play) -> None:
    """Every milestone after the first: funded, delivered and approved."""
    for m in play.spec.milestones[1:]:
        await milestone(play, m.key)


async def straight(play: Play) -> None:
    await sign(play)
    for m in play.spec.milestones:
        await milestone(play, m.key)


async def declined_then_revision(play: Play) -> None:
    await sign(play)
    await fund(play, play.first, (CARD_DECLINED, CARD_OK))
    await work(play, play.first)
    await play.client.request_revision(play.first, "Please add the mobile wireframes.")
    play.say(f"client asked for a revision of {play.first}")
    await work(play, play.first, revision=1)
    await approve(play, play.first)
    await the_rest(play)


async def cancel_after_funding(play: Play) -> None:
    await sign(play)
    await fund(play, play.first)
    await play.vendor.wait_for_work_order(play.spec.deal_id, play.first, 0, play.watch.timeout)
    await play.watch.milestone(play.first, MilestoneState.IN_PROGRESS)
    await play.operator.cancel(play.spec.deal_id, "Client's budget was withdrawn (demo)")
    play.say("operator cancelled the deal (admin API)")
    await play.watch.stage(DealStage.CANCELLED)


async def dispute_resolved(play: Play) -> None:
    await sign(play)
    await fund(play, play.first)
    await work(play, play.first)
    await play.client.open_dispute(play.first, "The wireframes miss the checkout flow we agreed on.")
    play.say(f"client opened a dispute on {play.first}")
    await play.watch.milestone(play.first, MilestoneState.DISPUTED)
    await play.operator.resolve_dispute(
        play.spec.deal_id, play.first, DisputeResolution.RELEASE, "Checkout flow is in section 3; work accepted."
    )
    play.say("operator resolved the dispute: release (Temporal update)")
    await released(play, play.first, f"{play.first} released")
    await the_rest(play)


async def silent_client(play: Play) -> None:
    await sign(play)
    for m in play.spec.milestones:
        await fund(play, m.key)
        await work(play, m.key, handed_in=HANDED_IN_TO_SILENCE)
        play.say(f"client stays silent; the review window ({SILENT_REVIEW_WINDOW.seconds}s) runs")
        await released(
            play, m.key, f"review window lapsed: {m.key} approved and released by the workflow",
            what=f"auto-approval of {m.key}",
        )


async def chargeback_won(play: Play) -> None:
    """The client's bank charges a delivered milestone's card payment back; the workflow answers
    with the deal's evidence before Stripe's due date, and the bank decides for the vendor."""
    await sign(play)
    await fund(play, play.first)
    await work(play, play.first)
    payment = play.milestone_now(play.first).payment_intent_id
    if payment is None:
        raise DemoStepFailed(f"{play.first} is delivered without its payment")
    dispute = await play.bank.charge_back(payment, CHARGEBACK_REASON)
    due_by = datetime.fromtimestamp(dispute["evidence_details"]["due_by"], UTC)
    play.say(
        f"client's bank charged back {play.first}'s card payment ({CHARGEBACK_REASON}): "
        f"dispute {dispute['id']}, evidence due {due_by:%Y-%m-%d %H:%M} UTC"
    )
    await play.watch.until(
        f"{play.first} to be disputed and its {play.money(dispute['amount'])} withdrawn",
        lambda s: s.money.withdrawn == dispute["amount"]
        and any(m.key == play.first and m.state == MilestoneState.DISPUTED for m in s.milestones),
    )
    play.say(f"Stripe withdrew {play.money(dispute['amount'])} from the balance; {play.first} is disputed")
    submitted = await play.watch.timeline_entry(
        EventKind.DISPUTE_EVIDENCE_SUBMITTED, play.first, "the dispute's evidence to be submitted"
    )
    if submitted.at >= due_by:
        raise DemoStepFailed(f"the evidence was submitted {submitted.at:%Y-%m-%d %H:%M}, after its due date")
    ahead = due_by - submitted.at
    play.say(
        f"workflow submitted the deal's evidence (SOW and its SHA-256, signature, deliverables, "
        f"timeline) at {submitted.at:%H:%M:%S} UTC, {ahead.days} days {ahead.seconds // 3600} h before it was due"
    )
    await play.bank.decide(dispute["id"], "won")
    play.say("client's bank decided the chargeback for the vendor: won")
    await play.watch.until(
        "the chargeback's funds to be reinstated",
        lambda s: s.money.withdrawn == 0
        and any(m.key == play.first and m.state == MilestoneState.DELIVERED for m in s.milestones),
    )
    play.say(f"funds reinstated: {play.money(dispute['amount'])} back; {play.first} awaits the client again")
    await approve(play, play.first)
    await the_rest(play)


async def marketplace(play: Play) -> None:
    """The large first milestone paid by ACH; a platform fee kept back from every payout."""
    await sign(play)
    await fund_by_ach(play, play.first)
    await work(play, play.first)
    await approve(play, play.first)
    await the_rest(play)


#: The change order the brand deal's vendor proposes mid-deal: packaging for eight products
#: instead of six, and a launch kit.
CHANGE_ORDER_REASON = "Lumen adds two products to the range: packaging for eight, and a launch kit"
REPRICED = {"packaging": {"title": "Packaging for eight products", "amount": 840000}}
ADDED = {"key": "launch", "title": "Launch kit: social and retail assets", "amount": 240000, "due_in_days": 75}


def terms_in_force(status: DealStatus) -> list[Milestone]:
    return next(v.milestones for v in status.sow_versions if v.number == status.sow_version)


async def countersigned_change_order(play: Play) -> None:
    """Both parties sign and the certificate goes to both; the deposit is released as it is
    paid; while the first milestone is worked on the vendor proposes a change order, which the
    client signs on the portal, and the rest of the deal runs on the new terms."""
    deal_id = play.spec.deal_id
    deposit, identity, packaging = (m.key for m in play.spec.milestones)
    await sign(play)
    await play.vendor.countersign(deal_id, play.spec.vendor.name)
    play.say("vendor countersigned the SOW (vendor API, with their own key)")
    signed = await play.watch.status_until("the signing certificate", lambda s: s.certificate_sha256 is not None)
    assert signed.certificate_sha256 is not None
    play.say(f"signing certificate issued and mailed to both parties (SHA-256 {signed.certificate_sha256[:12]}…)")

    await pay_link(play, deposit)
    play.say(f"client: {', '.join(await play.client.pay(deposit, (CARD_OK,)))}")
    await released(play, deposit, "deposit released as it was paid (policy.deposit_release: on_funding), no deliverable")

    await fund(play, identity)
    in_force = terms_in_force(signed)
    terms = [
        {**m.model_dump(mode="json", exclude_none=True), **REPRICED.get(m.key, {})} for m in in_force
    ] + [ADDED]
    await play.vendor.propose_amendment(deal_id, {"reason": CHANGE_ORDER_REASON, "milestones": terms})
    before = next(m.amount for m in in_force if m.key == packaging)
    play.say(
        f"vendor proposed a change order: {packaging} {play.money(before)} → "
        f"{play.money(REPRICED[packaging]['amount'])}, new milestone {ADDED['key']} {play.money(ADDED['amount'])}"
    )
    await play.client.accept_amendment()
    amended = await play.watch.status_until("version 2 in force", lambda s: s.sow_version == 2)
    play.say(
        f"client signed version 2 on the portal (SHA-256 {amended.sow_sha256[:12]}…): "
        f"the contract is now {play.money(amended.money.contract)}"
    )
    certified = await play.watch.status_until(
        "version 2's signing certificate",
        lambda s: s.certificate_sha256 not in (None, signed.certificate_sha256),
    )
    assert certified.certificate_sha256 is not None
    play.say(
        f"signing certificate of version 2 mailed to both parties with the answer "
        f"(SHA-256 {certified.certificate_sha256[:12]}…)"
    )
    play.spec = play.spec.model_copy(update={"milestones": terms_in_force(amended)})

    await work(play, identity)
    await approve(play, identity)
    await milestone(play, packaging)
    await milestone(play, ADDED["key"])
