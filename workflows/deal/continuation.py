"""Continue-as-new: a long deal starts a fresh history when Temporal suggests it, and its next
run takes the deal up exactly where this one left it.

Temporal suggests it (`is_continue_as_new_suggested`) once a history grows long: a deal of many
milestones, or one whose payment links expire and are replaced again and again. The deal asks
only at its seams: before each milestone, between the phases of one, and in the funding wait
just after a link was replaced. It continues there once every handler has finished, every task
beside the deal is done and every ledger batch is written (so no Stripe conversation is in
flight; since SEAMS_WAIT_BOUNDED it waits `policy.continue_as_new_wait` at most for those,
then goes on and continues at a later seam), unless a stop was requested (the wind-down runs
in the run that began it) or a refused reversal waits for the operator (its coroutine waits
with it). The next run's input is a `DealCarry` instead of the spec: the terms in force (an
accepted change order's) and the whole deal as it stands, with every signature and SOW version,
so it sends no SOW again and redoes nothing. (One input either way: the SDK decodes a run's inputs by its
parameters' types only when their numbers match, so an optional second parameter would leave
every older deal's spec undecoded.) Temporal copies the search attributes and the memo. Deals
started before DEAL_TERMS never ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.messages import (
        AccessCodeStatus,
        ContinuedDeal,
        DealStage,
        Signature,
        SowVersion,
        TimelineEntry,
    )
    from workflows import rules
    from workflows.deal.amendments import Amendments
    from workflows.deal.context import DealContext
    from workflows.deal.patches import SEAMS_WAIT_BOUNDED
    from workflows.deal.refunds import Refunds
    from workflows.deal.signing import Signing
    from workflows.deal.stripe_events import StripeEvents
    from workflows.milestone import MilestoneRun


#: The timer of a seam's wait for the work beside the deal, as the Temporal UI shows it.
GIVE_UP_WAITING = "go on without continuing as new"


class DealCarry(ContinuedDeal):
    """The input of a deal's run after the first: its spec and what the previous run held."""

    model_config = ConfigDict(extra="forbid")

    stage: DealStage
    #: Every milestone's run: its state, sessions, payments, money, clocks and revisions.
    milestones: list[MilestoneRun]
    livemode: bool | None
    signature: Signature
    timeline: list[TimelineEntry]
    anomalies: list[str]
    #: What the search attributes and the read model show (stage, collected money).
    published: tuple[DealStage, int] | None
    seen_event_ids: list[str]
    refund_ids: list[str]
    refunded_by_intent: dict[str, int]
    #: The milestone whose funding wait goes on with the link it has (none is made anew).
    funding: str | None = None
    #: This run's number: the deal's first run was 1.
    run: int = 2
    #: The signer's access codes sent and wrong ones entered, as the deal's status shows them.
    access_code: AccessCodeStatus | None = None
    #: The hash of the terms in force (a change order's version hash once one was accepted).
    sow_sha256: str
    #: Each party's signature of a countersigned SOW, and its certificate's SHA-256.
    signatures: list[Signature]
    certificate_sha256: str | None
    #: Every numbered SOW version, and the client's signature of each accepted change order.
    sow_versions: list[SowVersion]
    amendment_signatures: list[Signature]


class Continuation:
    """Asks at each seam whether to continue as new, and carries the deal over when it does."""

    def __init__(
        self,
        ctx: DealContext,
        signing: Signing,
        amendments: Amendments,
        stripe_events: StripeEvents,
        refunds: Refunds,
        carried: DealCarry | None,
    ) -> None:
        self.ctx = ctx
        self._signing = signing
        self._amendments = amendments
        self._stripe_events = stripe_events
        self._refunds = refunds
        self.carried = carried
        #: Work a seam gave up waiting for: while it runs, no seam waits again.
        self._slow: set[asyncio.Task[Any]] = set()
        self._funding = carried.funding if carried else None
        if carried is not None:
            self._take_up(carried)

    def resumes_funding(self, m: MilestoneRun) -> bool:
        """Whether this run takes up `m`'s funding wait where the previous one left it (once)."""
        if self._funding != m.key:
            return False
        self._funding = None
        return True

    async def at_seam(
        self, funding: MilestoneRun | None = None, still: Callable[[], bool] = lambda: True
    ) -> None:
        """Continue as new here if Temporal suggests it and the deal can be carried over now
        (`still()` says whether the seam is still one once everything in flight is done);
        otherwise return and let the deal go on."""
        ctx = self.ctx
        if not ctx.deal_terms or not workflow.info().is_continue_as_new_suggested():
            return
        if self._held():
            return
        while True:
            ctx.journal.flush()
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or ctx.stop is not None
            )
            if not await self._work_beside_done():
                return
            if self._held() or not still():
                return
            if workflow.all_handlers_finished() and ctx.journal.settled():
                break
        workflow.logger.info("The deal continues as new (run %d)", self._run() + 1)
        workflow.continue_as_new(self._carry(funding))

    async def _work_beside_done(self) -> bool:
        """Wait until the tasks beside the deal and the ledger batches are done; since
        SEAMS_WAIT_BOUNDED, for `policy.continue_as_new_wait` at most, and not at all for work an
        earlier seam gave up waiting for (False: the deal goes on without continuing). A stop
        ends the wait: the deal winds down at once."""
        ctx = self.ctx
        if not self._in_flight() or not workflow.patched(SEAMS_WAIT_BOUNDED):
            await ctx.beside_done()
            await ctx.journal.written()
            return True
        if not self._slow.isdisjoint(self._in_flight()):
            return False
        try:
            await workflow.wait_condition(
                lambda: not self._in_flight() or ctx.stop is not None,
                timeout=ctx.policy.continue_as_new_wait,
                timeout_summary=GIVE_UP_WAITING,
            )
        except TimeoutError:
            self._slow.update(self._in_flight())
            workflow.logger.info(
                "Work beside the deal still runs after %s: the deal goes on in this run",
                rules.span(ctx.policy.continue_as_new_wait),
            )
            return False
        return True

    def _in_flight(self) -> list[asyncio.Task[Any]]:
        """Tasks beside the deal and ledger batches not done yet."""
        ctx = self.ctx
        return [task for task in ctx.background if not task.done()] + ctx.journal.writing()

    def _held(self) -> bool:
        """The deal stays in this run: it winds down, or a refused reversal waits for the operator."""
        ctx = self.ctx
        return ctx.stop is not None or any(m.reversal_owed for m in ctx.milestones.values())

    def _run(self) -> int:
        return self.carried.run if self.carried else 1

    def _carry(self, funding: MilestoneRun | None) -> DealCarry:
        ctx = self.ctx
        assert self._signing.signature is not None, "seams come after the signature"
        return DealCarry(
            spec=ctx.spec,
            stage=ctx.stage,
            milestones=list(ctx.milestones.values()),
            livemode=ctx.livemode,
            signature=self._signing.signature,
            timeline=ctx.journal.timeline,
            anomalies=ctx.journal.anomalies,
            published=ctx.journal.published,
            seen_event_ids=sorted(self._stripe_events.seen),
            refund_ids=sorted(self._refunds.refund_ids),
            refunded_by_intent=self._refunds.refunded_by_intent,
            funding=funding.key if funding is not None else None,
            run=self._run() + 1,
            access_code=self._signing.access.status(),
            sow_sha256=ctx.sow_sha256,
            signatures=list(self._signing.signatures),
            certificate_sha256=self._signing.certificate_sha256,
            sow_versions=list(self._amendments.versions),
            amendment_signatures=list(self._amendments.signatures),
        )

    def _take_up(self, carried: DealCarry) -> None:
        ctx = self.ctx
        ctx.stage = carried.stage
        # In place (the rooms' rules hold this dict), in the carried order: a change order may
        # have reordered the milestones, and the ones it removed come after the rest.
        ctx.milestones.clear()
        ctx.milestones.update({m.key: m for m in carried.milestones})
        ctx.sow_sha256 = carried.sow_sha256
        ctx.livemode = carried.livemode
        ctx.journal.resume(list(carried.timeline), list(carried.anomalies), carried.published)
        self._signing.signature = carried.signature
        self._signing.access.take_up(carried.access_code)
        self._signing.signatures = list(carried.signatures)
        self._signing.certificate_sha256 = carried.certificate_sha256
        self._amendments.versions = list(carried.sow_versions)
        self._amendments.signatures = list(carried.amendment_signatures)
        self._stripe_events.seen = set(carried.seen_event_ids)
        self._refunds.refund_ids = set(carried.refund_ids)
        self._refunds.refunded_by_intent = dict(carried.refunded_by_intent)
