"""DealWorkflow: one deal, from the statement of work to the last receipt, as a durable workflow.

`run` walks the deal: SOW sent, signature, then each milestone in order (funding, work, review,
release) and finally completion, or cancellation/expiry with its compensations; then it waits
for every handler and every task beside the deal before it returns. Each phase is a room of its
own (`signing`, `checkout` and `payments`, `work`, `release`, `disputes`, `winddown`,
`stripe_events`), sharing the deal through one `DealContext`; the decisions that need no
Temporal are in `workflows.rules`.

Human actions arrive both as signals and as updates of the same name (`actions`); handlers
change state and send notices. Money moves only in `run` and in the Stripe event handler, one
Stripe conversation at a time. Stripe events are hints: the workflow re-reads Stripe before it
believes one, and it keys funding by payment intent so duplicates and reordering fund a
milestone once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # pydantic imports it lazily to validate EmailStr fields; load it here, outside the sandbox.
    import email_validator  # noqa: F401

    from dealflow.contract import (
        ACCEPT_AMENDMENT,
        APPROVE_MILESTONE,
        CANCEL_DEAL,
        DECLINE_AMENDMENT,
        OPEN_DISPUTE,
        PROPOSE_AMENDMENT,
        REQUEST_REVISION,
        RESEND_ACCESS_CODE,
        RESOLVE_DISPUTE,
        SETTLE_REVERSAL,
        SIGN_SOW,
        STATUS,
        STRIPE_EVENT,
        SUBMIT_DELIVERABLE,
        SUMMARY,
        EventKind,
    )
    from dealflow.messages import (
        DealStage,
        DealStatus,
        DealSummary,
        EmailKind,
        MilestoneState,
        MilestoneSummary,
        StripeEventSignal,
    )
    from dealflow.models import DealSpec
    from workflows import rules
    from workflows.deal.actions import Action, Actions, action_handlers
    from workflows.deal.amendments import Amendments
    from workflows.deal.capture import Capture
    from workflows.deal.chargebacks import Chargebacks
    from workflows.deal.checkout import Checkout
    from workflows.deal.context import DealContext
    from workflows.deal.continuation import Continuation, DealCarry
    from workflows.deal.disputes import Disputes
    from workflows.deal.payments import Payments
    from workflows.deal.processing import DebitWatch
    from workflows.deal.refunds import Refunds
    from workflows.deal.release import Release
    from workflows.deal.reversals import Reversals
    from workflows.deal.signing import Signing
    from workflows.deal.stripe_events import StripeEvents
    from workflows.deal.winddown import WindDown, requester
    from workflows.deal.work import Work
    from workflows.milestone import MilestoneRun

S = MilestoneState


@workflow.defn
@action_handlers
class DealWorkflow:
    @workflow.init
    def __init__(self, start: DealSpec | DealCarry) -> None:
        spec, carried = (start.spec, start) if isinstance(start, DealCarry) else (start, None)
        ctx = self._ctx = DealContext(spec)
        self._signing = signing = Signing(ctx)
        self._amendments = amendments = Amendments(ctx, signing)
        capture = Capture(ctx)
        refunds = Refunds(ctx)
        work = Work(ctx, capture)
        disputes = Disputes(ctx, refunds, capture)
        payments = Payments(ctx, refunds, work)
        self._reversals = reversals = Reversals(ctx)
        release = Release(ctx, capture, disputes, reversals)
        debits = DebitWatch(ctx, payments)
        self._wind_down = wind_down = WindDown(ctx, payments, release, refunds, debits)
        chargebacks = Chargebacks(ctx, amendments.client_signature)
        self._stripe_events = StripeEvents(ctx, payments, disputes, refunds, release, chargebacks)
        self._continuation = continuation = Continuation(
            ctx, signing, amendments, self._stripe_events, refunds, carried
        )
        #: What drives a milestone on, by the state it is in.
        self._phases: dict[MilestoneState, Callable[[MilestoneRun], Awaitable[None]]] = {
            S.AWAITING_FUNDING: Checkout(ctx, payments, continuation).funding_phase,
            S.PROCESSING: debits.processing_phase,
            S.IN_PROGRESS: work.work_phase,
            S.DELIVERED: work.review_phase,
            S.DISPUTED: disputes.dispute_phase,
            S.APPROVED: release.release_phase,
        }
        runs = ctx.milestones
        self._actions = Actions(
            ctx,
            {
                SIGN_SOW: Action(
                    lambda sign: sign.party, signing.refusal, signing.sign, admit=signing.admit
                ),
                SUBMIT_DELIVERABLE: Action(
                    lambda _: "vendor", lambda i: rules.submit_refusal(runs, i), work.submit
                ),
                APPROVE_MILESTONE: Action(
                    lambda _: "client", lambda i: rules.approve_refusal(runs, i), work.approve
                ),
                REQUEST_REVISION: Action(
                    lambda _: "client",
                    lambda i: rules.revision_refusal(runs, i, ctx.policy.max_revisions),
                    work.revise,
                ),
                OPEN_DISPUTE: Action(
                    lambda i: i.opened_by,
                    lambda i: rules.dispute_refusal(runs, i),
                    disputes.dispute,
                ),
                RESOLVE_DISPUTE: Action(
                    lambda _: "operator",
                    lambda i: rules.resolve_refusal(runs, i),
                    disputes.resolve_later,
                ),
                CANCEL_DEAL: Action(requester, lambda _: None, wind_down.cancel),
                RESEND_ACCESS_CODE: Action(
                    lambda _: "operator",
                    lambda _: rules.resend_refusal(ctx.stage, signing.access.required),
                    signing.access.resend,
                ),
                SETTLE_REVERSAL: Action(
                    lambda _: "operator",
                    lambda i: rules.settle_reversal_refusal(runs, i),
                    reversals.settle,
                    while_stopping=True,
                ),
                PROPOSE_AMENDMENT: Action(
                    lambda i: i.proposed_by, amendments.proposal_refusal, amendments.propose
                ),
                ACCEPT_AMENDMENT: Action(
                    lambda _: "client", amendments.accept_refusal, amendments.accept
                ),
                DECLINE_AMENDMENT: Action(
                    lambda _: "client", amendments.decline_refusal, amendments.decline
                ),
            },
        )

    @workflow.run
    async def run(self, start: DealSpec | DealCarry) -> DealStatus:
        """The deal from its spec, or from where its previous run continued as new (`DealCarry`):
        milestones it finished are skipped, the one under way goes on in its phase."""
        ctx = self._ctx
        spec, carried = ctx.spec, self._continuation.carried
        legacy_ledger_writer = ctx.journal.start()
        if workflow.memo_value("title", None) is None:
            workflow.upsert_memo({"title": spec.title})
        if carried is None:
            self._signing.send_sow()
            await self._signing.await_signature()
        if ctx.deal_terms:
            await self._run_milestones()
        else:
            for milestone in ctx.milestones.values():
                if ctx.stop is not None:
                    break
                await self._run_milestone(milestone)
        if ctx.stop is not None:
            await self._wind_down.wind_down(ctx.stop)
        else:
            if ctx.deal_terms:
                await self._release_held_deposit("as the deal completes")
            await self._reversals.all_settled()
            self._complete()
        await self._settle(legacy_ledger_writer)
        return self.status()

    async def _run_milestones(self) -> None:
        """Each milestone in the order of the terms in force: amendments add, remove and reorder
        them while the deal runs. A run that took the deal up drives the milestone under way on
        in its phase (a finished one has none); a held deposit goes with the next release."""
        ctx = self._ctx
        driven: set[str] = set()
        while ctx.stop is None and self._next_milestone(driven) is not None:
            await self._continuation.at_seam()
            milestone = self._next_milestone(driven)
            if ctx.stop is not None or milestone is None:
                break
            driven.add(milestone.key)
            if milestone.state is S.PENDING:
                await self._run_milestone(milestone)
            else:
                await self._drive(milestone)
            if milestone.state is S.RELEASED and not milestone.spec.deposit:
                await self._release_held_deposit(f"with '{milestone.title}'")

    def _next_milestone(self, driven: set[str]) -> MilestoneRun | None:
        return next((m for m in self._ctx.milestones.values() if m.key not in driven), None)

    async def _run_milestone(self, m: MilestoneRun) -> None:
        """Drive one milestone through its phases until it is released or refunded."""
        ctx = self._ctx
        ctx.set_state(
            m,
            S.AWAITING_FUNDING,
            "workflow",
            EventKind.AWAITING_FUNDING,
            f"'{m.title}' awaits funding of {ctx.money(m.spec.amount)}",
        )
        await self._drive(m)

    async def _drive(self, m: MilestoneRun) -> None:
        """Each phase the milestone's state calls for, until none does (released, refunded)."""
        while self._ctx.stop is None and m.state in self._phases:
            await self._phases[m.state](m)
            await self._continuation.at_seam()

    async def _release_held_deposit(self, when: str) -> None:
        """A deposit held for the first milestone (policy.deposit_release) goes to the vendor
        once a milestone after it is released (or, if none was, as the deal completes)."""
        ctx = self._ctx
        deposit = next(iter(ctx.milestones.values()))
        if not (deposit.spec.deposit and deposit.state is S.FUNDED) or ctx.stop is not None:
            return
        ctx.set_state(
            deposit,
            S.APPROVED,
            "workflow",
            EventKind.APPROVED,
            f"'{deposit.title}' released {when} (policy.deposit_release)",
        )
        await self._drive(deposit)

    def _complete(self) -> None:
        ctx = self._ctx
        ctx.stage = DealStage.COMPLETED
        ctx.timers.clear()
        ctx.record(
            "workflow", EventKind.COMPLETED, "Every milestone is done: the deal is completed"
        )
        ctx.notify_both(EmailKind.DEAL_COMPLETED, "deal_completed")

    async def _settle(self, legacy_ledger_writer: asyncio.Task[None] | None) -> None:
        """The deal is over: let every handler and every task beside it finish, then the ledger.
        With OWN_STEPS again until none is left: a webhook can still come while the deal winds
        up (a payment after the end is given back), and its handler must not be cut off."""
        ctx = self._ctx
        while True:
            ctx.journal.flush()
            await workflow.wait_condition(workflow.all_handlers_finished)
            await ctx.beside_done()
            await ctx.journal.drain(legacy_ledger_writer)
            if not ctx.own_steps or workflow.all_handlers_finished():
                return

    # ------------------------------------------------------------------ messages
    # (the human actions' signals and updates are added by `action_handlers`)

    @workflow.signal(name=STRIPE_EVENT)
    async def stripe_event(self, event: StripeEventSignal) -> None:
        """A verified webhook, as a hint: deduplicated by event id, then checked against Stripe."""
        await self._stripe_events.receive(event)

    @workflow.query(name=STATUS)
    def status(self) -> DealStatus:
        ctx = self._ctx
        spec = ctx.spec
        return DealStatus(
            deal_id=spec.deal_id,
            title=spec.title,
            currency=spec.currency,
            stage=ctx.stage,
            client_email=str(spec.client.email),
            vendor_email=str(spec.vendor.email),
            vendor_id=spec.vendor.vendor_id,
            sow_sha256=ctx.sow_sha256,
            livemode=ctx.livemode,
            signature=self._signing.signature,
            signatures=self._signing.all_signatures() + self._amendments.signatures,
            sow_version=self._amendments.current.number,
            sow_versions=list(self._amendments.versions),
            signing_order=list(self._signing.order),
            awaiting_signature=self._signing.awaiting(),
            certificate_sha256=self._signing.certificate_sha256,
            access_code=self._signing.access.status(),
            milestones=[m.status() for m in ctx.milestones.values()],
            money=ctx.money_totals(),
            timeline=list(ctx.journal.timeline),
            anomalies=list(ctx.journal.anomalies),
            next_deadline=ctx.timers.deadline,
            demo=ctx.policy.demo,
        )

    @workflow.query(name=SUMMARY)
    def summary(self) -> DealSummary:
        """Where the deal stands, without the timeline: what pollers ask for every second."""
        ctx = self._ctx
        return DealSummary(
            deal_id=ctx.spec.deal_id,
            stage=ctx.stage,
            currency=ctx.spec.currency,
            milestones=[
                MilestoneSummary(
                    key=m.key,
                    state=m.state,
                    amount=m.spec.amount,
                    funded=m.funded,
                    checkout_session_id=m.session.session_id if m.session else None,
                    payment_intent_id=m.payment_intent_id,
                )
                for m in ctx.milestones.values()
            ],
            money=ctx.money_totals(),
            next_deadline=ctx.timers.deadline,
            anomalies=len(ctx.journal.anomalies),
        )
