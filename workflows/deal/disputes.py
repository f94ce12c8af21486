"""Disputes: a client, vendor, operator, a chargeback or a stopped payout pauses a milestone (its
timers with it, except the ones that protect held money) until it is resolved: work resumes,
the money is released, or it goes back to the client. A chargeback Stripe closes resolves the
dispute as the bank decided; a lost one already returned the money."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import DISPUTABLE, EventKind
    from dealflow.messages import (
        DisputeResolution,
        EmailKind,
        MilestoneState,
        OpenDispute,
        PaymentKind,
        ResolveDispute,
    )
    from workflows import rules
    from workflows.deal.capture import Capture
    from workflows.deal.context import DealContext
    from workflows.deal.refunds import Refunds
    from workflows.journal import Source
    from workflows.milestone import MilestoneRun, PendingResolution

S = MilestoneState


class Disputes:
    def __init__(self, ctx: DealContext, refunds: Refunds, capture: Capture) -> None:
        self.ctx = ctx
        self.refunds = refunds
        self.capture = capture

    def open(self, m: MilestoneRun, reason: str, by: Source) -> None:
        m.paused_state = m.state
        m.dispute_reason = reason
        m.disputes += 1
        self.ctx.set_state(
            m,
            S.DISPUTED,
            by,
            EventKind.DISPUTE_OPENED,
            f"Dispute opened by {by} on '{m.title}': {reason}. Its timers are paused.",
        )
        self.ctx.notify_both(
            EmailKind.DISPUTE_OPENED, f"dispute_opened:{m.key}:{m.disputes}", m, reason=reason
        )

    async def dispute_phase(self, m: MilestoneRun) -> None:
        ctx = self.ctx
        await ctx.timers.run(lambda: m.resolution is None, lambda: self.capture.timers(m))
        if m.resolution is None or ctx.stop is not None:
            return
        resolution, m.resolution = m.resolution, None
        if resolution.resolution is DisputeResolution.REFUND and not await self._refund(
            m, resolution
        ):
            return
        target = {
            DisputeResolution.RESUME: m.paused_state or S.IN_PROGRESS,
            DisputeResolution.RELEASE: S.APPROVED,
            DisputeResolution.REFUND: S.REFUNDED,
        }[resolution.resolution]
        m.dispute_reason = None
        notes = f": {resolution.notes}" if resolution.notes else ""
        ctx.set_state(
            m,
            target,
            rules.source(resolution.by),
            EventKind.DISPUTE_RESOLVED,
            f"Dispute on '{m.title}' resolved by {resolution.by} with "
            f"{resolution.resolution.value}{notes}",
            resolution.operator,
        )
        ctx.notify_both(
            EmailKind.DISPUTE_RESOLVED,
            f"dispute_resolved:{m.key}:{m.disputes}",
            m,
            resolution=resolution.resolution.value,
            notes=resolution.notes,
        )

    async def _refund(self, m: MilestoneRun, resolution: PendingResolution) -> bool:
        """Give a disputed milestone's money back; a lost chargeback already did. False when the
        refund failed (the milestone stays disputed)."""
        ctx = self.ctx
        if resolution.settled_by_stripe is not None:
            ctx.ledger_payment(m, PaymentKind.REFUND, resolution.settled_by_stripe, m.held, "lost")
            m.count_returned(m.held, extra=False)
            return True
        async with ctx.stripe_turn():
            if await self.refunds.return_funding(m, purpose="dispute") is not None:
                return True
        ctx.anomaly(
            f"The refund that resolves the dispute on '{m.title}' failed; it stays disputed", m
        )
        return False

    # ------------------------------------------------------------------ the people's actions
    # (each checked first by its rule in `workflows.rules`)

    def dispute(self, dispute: OpenDispute) -> str:
        m = self.ctx.milestones[dispute.milestone_key]
        self.open(m, dispute.reason, dispute.opened_by)
        return f"Dispute opened on '{m.title}': it is paused until an operator resolves it"

    def resolve_later(self, resolve: ResolveDispute) -> str:
        m = self.ctx.milestones[resolve.milestone_key]
        m.resolution = PendingResolution(
            resolve.resolution, resolve.notes, by="operator", operator=self.ctx.acting_operator
        )
        return f"Resolution '{resolve.resolution.value}' accepted for '{m.title}'"

    # ------------------------------------------------------------------ chargebacks

    def chargeback_opened(self, m: MilestoneRun, dispute_id: str) -> None:
        reason = f"the client disputed the charge with their bank (Stripe dispute {dispute_id})"
        if m.state in DISPUTABLE:
            self.open(m, reason, "stripe")
        elif m.state is S.DISPUTED:
            self.ctx.record(
                "stripe", EventKind.CHARGEBACK, f"'{m.title}' is already disputed; also {reason}", m
            )
        else:
            self.ctx.anomaly(
                f"Chargeback on '{m.title}' ({m.state.value}): {reason}; "
                "answer it in the Stripe dashboard",
                m,
            )

    def chargeback_closed(self, m: MilestoneRun, dispute_id: str, status: str | None) -> None:
        outcome = {
            "won": (DisputeResolution.RESUME, "Stripe dispute won: the money stays"),
            "lost": (DisputeResolution.REFUND, "Stripe dispute lost: the bank returned the money"),
        }.get(status or "")
        if m.state is not S.DISPUTED or m.resolution is not None or outcome is None:
            self.ctx.anomaly(
                f"Stripe dispute {dispute_id} on '{m.title}' closed "
                f"({status or 'status unknown'}) while the milestone is "
                f"{m.state.value}: an operator must decide",
                m,
            )
            return
        resolution, notes = outcome
        lost = resolution is DisputeResolution.REFUND
        m.resolution = PendingResolution(
            resolution, notes, by="stripe", settled_by_stripe=dispute_id if lost else None
        )
