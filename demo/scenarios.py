"""What happens in each demo deal: the specs (shaped like `examples/`, on the demo policy) and
the story each one's client, vendor and operator play out, with the end it must reach.

The first seven deals of a demo cover every path once: a declined card and a revision, a
cancellation that refunds, a dispute resolved by an operator, a chargeback the client's bank
opens and the deal's evidence wins, a marketplace deal whose large milestone is paid by ACH and
whose payouts keep a platform fee, a card held until approval, and a silent client whose review
window lapses (auto-approval). Further deals repeat the happy paths.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from dealflow.contract import STATUS, SUMMARY, EventKind
from dealflow.messages import (
    TERMINAL_STAGES,
    DealStage,
    DealStatus,
    DealSummary,
    DisputeResolution,
    MilestoneState,
    MilestoneStatus,
    MilestoneSummary,
    TimelineEntry,
)
from dealflow.models import DealSpec, PaymentMethod, Policy, workflow_id_for
from dealflow.money import format_money, platform_fee
from demo.actors import DemoBank, DemoClient, DemoOperator, DemoVendor
from demo.http import DemoStepFailed
from stripe_sandbox.control import TEST_ACH_PAYS

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"

#: Windows in seconds: long enough for the simulated people, short enough to watch timers fire.
DEMO_POLICY = Policy(
    sign_window=timedelta(seconds=600),
    fund_window=timedelta(seconds=600),
    review_window=timedelta(seconds=300),
    reminder_interval=timedelta(seconds=120),
    reconcile_after=timedelta(seconds=30),
    max_revisions=2,
    demo=True,
)
#: The silent client's review window: the workflow approves on its own when it lapses.
SILENT_REVIEW_WINDOW = timedelta(seconds=20)

#: Why the chargeback scenario's client says they disputed the payment at their bank.
CHARGEBACK_REASON = "product_not_received"

#: How long one wait for a deal to move may take before the demo calls the deal stuck.
STEP_TIMEOUT = 90.0
POLL_INTERVAL = 0.5


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class DemoDeal:
    """A deal the demo plays again and again: demo/deals/<name>.json, whose `policy` is what the
    deal changes in the demo policy. Each copy adds what sets it apart: its id and number, the
    demo vendor's work-order URL, and a plus address of its own for the client."""

    deal: Mapping[str, Any]

    @classmethod
    def named(cls, name: str) -> DemoDeal:
        return cls(json.loads((resources.files("demo") / "deals" / f"{name}.json").read_text()))

    def spec(self, deal_id: str, number: int, fulfillment_url: str, policy: Policy) -> DealSpec:
        client = self.deal["client"]
        mailbox, domain = client["email"].split("@")
        return DealSpec.model_validate(
            {
                **self.deal,
                "deal_id": deal_id,
                "title": f"{self.deal['title']} #{number}",
                "client": {**client, "email": f"{mailbox}+{deal_id}@{domain}"},
                "vendor": {**self.deal["vendor"], "fulfillment_url": fulfillment_url},
                "policy": {**policy.model_dump(), **self.deal["policy"]},
            }
        )


#: Like examples/website-redesign.yaml: capture when funded, no Connect account.
WEBSITE = DemoDeal.named("website-redesign")
#: Like examples/data-audit.json: the card is held, charged on approval, paid out by transfer.
AUDIT = DemoDeal.named("data-audit")
#: A marketplace deal: its large milestone may be paid by ACH, each payout keeps a platform fee.
WAREHOUSE = DemoDeal.named("warehouse-integration")


# --------------------------------------------------------------------------- watching a deal


class DealWatch:
    """The deal's small `summary` query, polled; the people wait on it, the live display shows
    it. Once the deal has ended its whole `status` is taken, once, for the report."""

    def __init__(self, temporal: Client, deal_id: str, *, timeout: float = STEP_TIMEOUT) -> None:
        self.handle = temporal.get_workflow_handle(workflow_id_for(deal_id))
        #: How long one wait for the deal to move may take (longer under `dealflow chaos`).
        self.timeout = timeout
        self.summary: DealSummary | None = None
        self.status: DealStatus | None = None
        self._changed = asyncio.Condition()

    async def poll_forever(self) -> None:
        while self.status is None:
            try:
                summary = await self.handle.query(SUMMARY, result_type=DealSummary)
                if summary.stage in TERMINAL_STAGES:
                    self.status = await self.handle.query(STATUS, result_type=DealStatus)
            except (RPCError, WorkflowQueryFailedError):
                summary = None  # not started yet, or the worker is busy: ask again shortly
            if summary is not None:
                async with self._changed:
                    self.summary = summary
                    self._changed.notify_all()
            if self.status is None:
                await asyncio.sleep(POLL_INTERVAL)

    async def until(
        self, what: str, ready: Callable[[DealSummary], bool], timeout: float | None = None
    ) -> DealSummary:
        """The first summary that is `ready`; fails at once if the deal ends without getting there."""
        timeout = self.timeout if timeout is None else timeout

        def settled() -> bool:
            return self.summary is not None and (ready(self.summary) or self.summary.stage in TERMINAL_STAGES)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(settled), timeout)
            except TimeoutError as error:
                stage = self.summary.stage if self.summary else "not started"
                raise DemoStepFailed(f"waited {timeout:.0f}s for {what}; the deal is {stage}") from error
        assert self.summary is not None
        if not ready(self.summary):
            raise DemoStepFailed(f"the deal ended {self.summary.stage} while waiting for {what}")
        return self.summary

    async def status_now(self, what: str) -> DealStatus:
        """The whole deal as it stands now (asked again while the worker cannot answer)."""
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    try:
                        return await self.handle.query(STATUS, result_type=DealStatus)
                    except (RPCError, WorkflowQueryFailedError):
                        await asyncio.sleep(POLL_INTERVAL)
        except TimeoutError as error:
            raise DemoStepFailed(f"waited {self.timeout:.0f}s for the deal's status ({what})") from error

    async def milestone_status(self, key: str) -> MilestoneStatus:
        status = await self.status_now(f"milestone {key}")
        return next(m for m in status.milestones if m.key == key)

    async def timeline_entry(self, kind: str, key: str, what: str) -> TimelineEntry:
        """The deal's first timeline entry of `kind` for milestone `key`, once there is one."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            status = await self.status_now(what)
            entry = next((e for e in status.timeline if e.kind == kind and e.milestone_key == key), None)
            if entry is not None:
                return entry
            if status.stage in TERMINAL_STAGES:
                raise DemoStepFailed(f"the deal ended {status.stage} while waiting for {what}")
            if asyncio.get_running_loop().time() > deadline:
                raise DemoStepFailed(f"waited {self.timeout:.0f}s for {what}; the deal is {status.stage}")
            await asyncio.sleep(POLL_INTERVAL)

    async def milestone(self, key: str, *states: MilestoneState, what: str = "") -> DealSummary:
        def ready(summary: DealSummary) -> bool:
            return any(m.key == key and m.state in states for m in summary.milestones)

        return await self.until(what or f"{key} to be {' or '.join(states)}", ready)

    async def stage(self, *stages: DealStage) -> DealSummary:
        return await self.until(f"stage {' or '.join(stages)}", lambda summary: summary.stage in stages)


# --------------------------------------------------------------------------- the plays


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


async def work(play: Play, key: str, revision: int = 0) -> None:
    """The vendor waits for the work order, then hands in the milestone's file."""
    order = await play.vendor.wait_for_work_order(play.spec.deal_id, key, revision, play.watch.timeout)
    await play.watch.milestone(key, MilestoneState.IN_PROGRESS)
    summary = f"{order['title']}: done" + (f", revised as asked ({order['notes']})" if revision else "")
    await play.vendor.deliver(play.spec.deal_id, key, revision, summary)
    play.say(f"vendor delivered {key}" + (f" (revision {revision})" if revision else ""))
    await play.watch.milestone(key, MilestoneState.DELIVERED)


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
        await work(play, m.key)
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


# --------------------------------------------------------------------------- scenarios


SpecMaker = Callable[[str, int, str, Policy], DealSpec]


@dataclass(frozen=True)
class Scenario:
    key: str
    story: str
    make_spec: SpecMaker
    play: Callable[[Play], Awaitable[None]]
    end: DealStage
    policy: Policy = DEMO_POLICY

    def expected_money(self, spec: DealSpec) -> tuple[int, int, int]:
        """(released, refunded, platform fees) at the end, in minor units."""
        if self.end == DealStage.CANCELLED:
            return 0, spec.milestones[0].amount, 0
        fees = sum(
            platform_fee(m.amount, spec.policy.platform_fee_bps, spec.policy.platform_fee_fixed)
            for m in spec.milestones
        )
        return spec.total_amount, 0, fees


REVISION = Scenario("revision", "card declined, then paid; one revision", WEBSITE.spec, declined_then_revision, DealStage.COMPLETED)
CANCEL = Scenario("cancel", "funded, then cancelled: refund", WEBSITE.spec, cancel_after_funding, DealStage.CANCELLED)
DISPUTE = Scenario("dispute", "dispute opened, operator releases", WEBSITE.spec, dispute_resolved, DealStage.COMPLETED)
CHARGEBACK = Scenario(
    "chargeback", "bank chargeback, evidence submitted, won", WEBSITE.spec, chargeback_won, DealStage.COMPLETED
)
MARKETPLACE = Scenario(
    "marketplace", "paid by ACH, platform fee on each payout", WAREHOUSE.spec, marketplace, DealStage.COMPLETED
)
HOLD = Scenario("hold", "card held, charged on approval, transfer", AUDIT.spec, straight, DealStage.COMPLETED)
SILENT = Scenario(
    "silent", "client silent: auto-approval", WEBSITE.spec, silent_client, DealStage.COMPLETED,
    policy=DEMO_POLICY.model_copy(update={"review_window": SILENT_REVIEW_WINDOW}),
)
STRAIGHT = Scenario("straight", "signed, paid, delivered, approved", WEBSITE.spec, straight, DealStage.COMPLETED)

#: Every path once, then the happy paths again.
_FIRST = (REVISION, CANCEL, DISPUTE, CHARGEBACK, MARKETPLACE, HOLD, SILENT)
_REPEAT = (STRAIGHT, HOLD, REVISION)


def scenarios_for(count: int) -> list[Scenario]:
    return [_FIRST[i] if i < len(_FIRST) else _REPEAT[(i - len(_FIRST)) % len(_REPEAT)] for i in range(count)]
