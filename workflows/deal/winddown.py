"""Cancellation and expiry: the compensations of the saga. Once the deal is asked to stop, `run`
leaves the milestones and winds down: every payment link is closed, held money is paid out where
the vendor keeps it and returned to the client otherwise, and both parties are told."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import EventKind
    from dealflow.messages import CancelDeal, DealStage, EmailKind, MilestoneState
    from workflows import rules
    from workflows.deal.context import DealContext
    from workflows.deal.payments import Payments
    from workflows.deal.processing import DebitWatch
    from workflows.deal.refunds import Refunds
    from workflows.deal.release import Release
    from workflows.journal import Source
    from workflows.milestone import MilestoneRun
    from workflows.rules import StopRequest

S = MilestoneState


def requester(cancel: CancelDeal) -> Source:
    """Who asked to cancel, as a timeline source."""
    return rules.source(cancel.requested_by)


class WindDown:
    def __init__(
        self,
        ctx: DealContext,
        payments: Payments,
        release: Release,
        refunds: Refunds,
        debits: DebitWatch,
    ) -> None:
        self.ctx = ctx
        self.payments = payments
        self.release = release
        self.refunds = refunds
        self.debits = debits

    def cancel(self, cancel: CancelDeal) -> str:
        """The cancel action: the deal stops at its next step, and `run` winds it down."""
        self.ctx.request_stop(DealStage.CANCELLED, cancel.reason, requester(cancel))
        return "Cancellation started: open payments are being returned"

    async def wind_down(self, stop: StopRequest) -> None:
        """Compensate (saga): close payment links, then return or pay out held money per policy."""
        ctx = self.ctx
        for m in ctx.milestones.values():
            await self.debits.outcome(m)
        async with ctx.stripe_turn():
            refunds = [await self._compensate(m) for m in ctx.milestones.values()]
        await self.release.reversals.all_settled()
        ctx.stage = stop.stage
        ctx.timers.clear()
        ctx.record(
            stop.source,
            EventKind(stop.stage.value),
            f"Deal {stop.stage.value}: {stop.reason}",
            operator=stop.operator,
        )
        if stop.stage is DealStage.CANCELLED:
            ctx.notify_both(
                EmailKind.DEAL_CANCELLED,
                "deal_cancelled",
                reason=stop.reason,
                refunds=[
                    {"milestone_title": m.title, "amount_display": ctx.money(amount)}
                    for m, amount in zip(ctx.milestones.values(), refunds, strict=True)
                    if amount
                ],
            )
        else:
            ctx.notify_both(EmailKind.DEAL_EXPIRED, "deal_expired", reason=stop.reason)

    async def _compensate(self, m: MilestoneRun) -> int:
        """Undo what one milestone holds; returns the amount given back to the client."""
        ctx = self.ctx
        await self.payments.close_checkout(m)
        returned = 0
        if m.held and m.state is not S.RELEASED:
            if rules.vendor_keeps(m, ctx.policy.cancel_refund):
                problem = await self.release.pay_vendor(m)
                if problem is not None:
                    ctx.anomaly(f"Cancelling: {problem} for '{m.title}'; its money stays held", m)
            else:
                returned = await self.refunds.return_funding(m, purpose="cancel") or 0
        if m.state not in (S.RELEASED, S.REFUNDED):
            m.enter(S.CANCELLED, workflow.now(), ctx.policy)
        return returned
