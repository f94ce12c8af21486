"""Giving money back: a refund of a captured payment or the void of a card hold, counted as the
milestone's own money returned or as a payment made twice; and refunds Stripe reports, counted
once whether dealflow made them or someone did in the Stripe dashboard."""

from __future__ import annotations

from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow.contract import EventKind
    from dealflow.messages import PaymentKind, RefundInput
    from workflows import calls
    from workflows.deal.context import DealContext
    from workflows.milestone import MilestoneRun


class Refunds:
    def __init__(self, ctx: DealContext) -> None:
        self.ctx = ctx
        #: Refunds dealflow made, so Stripe's word on them is a confirmation, not news.
        self.refund_ids: set[str] = set()
        #: What is known to be refunded of each payment intent, dealflow's or not.
        self.refunded_by_intent: dict[str, int] = {}

    async def return_funding(self, m: MilestoneRun, purpose: str) -> int | None:
        """Return the milestone's held money to the client; the amount, or None on failure."""
        assert m.payment_intent_id
        return await self.give_back(
            m,
            m.payment_intent_id,
            captured=bool(m.captured),
            amount=m.held,
            reason="requested_by_customer",
            purpose=purpose,
            extra=False,
        )

    async def give_back(
        self,
        m: MilestoneRun,
        intent_id: str,
        *,
        captured: bool,
        amount: int,
        reason: Literal["duplicate", "requested_by_customer"],
        purpose: str,
        extra: bool,
    ) -> int | None:
        """Refund a captured payment, or void an authorization, and count it as the milestone's
        own money returned or as an `extra` payment refunded; the amount, or None on failure."""
        ctx = self.ctx
        if not captured:
            voided = await ctx.attempt(
                "cancelling the card authorization",
                calls.stripe(
                    PaymentActivities.cancel_authorization, ctx.intent_action(m, intent_id)
                ),
                m,
            )
            if voided is None:
                return None
            m.count_returned(amount, extra=extra)
            ctx.record(
                "workflow",
                EventKind.AUTHORIZATION_CANCELLED,
                f"Card hold of {ctx.money(amount)} for '{m.title}' released ({intent_id})",
                m,
            )
            return amount
        refund = await ctx.attempt(
            "refunding the payment",
            calls.stripe(
                PaymentActivities.refund_payment,
                RefundInput(
                    deal_id=ctx.spec.deal_id,
                    milestone_key=m.key,
                    payment_intent_id=intent_id,
                    amount=amount,
                    reason=reason,
                    purpose=purpose,
                ),
            ),
            m,
        )
        if refund is None:
            return None
        m.count_returned(refund.amount, extra=extra)
        self._count(m, intent_id, refund.refund_id, refund.amount, refund.status)
        ctx.record(
            "workflow",
            EventKind.REFUNDED,
            f"{ctx.money(refund.amount)} refunded to the client for '{m.title}' "
            f"({refund.refund_id}, {purpose})",
            m,
        )
        return refund.amount

    def _count(
        self, m: MilestoneRun, intent_id: str, refund_id: str, amount: int, status: str
    ) -> None:
        self.refund_ids.add(refund_id)
        self.refunded_by_intent[intent_id] = self.refunded_by_intent.get(intent_id, 0) + amount
        self.ctx.ledger_payment(m, PaymentKind.REFUND, refund_id, amount, status)

    # ------------------------------------------------------------------ what Stripe reports

    def refund_seen(self, m: MilestoneRun, refund_id: str) -> None:
        if refund_id in self.refund_ids:
            self.ctx.record(
                "stripe", EventKind.REFUND_CONFIRMED, f"Stripe confirmed refund {refund_id}", m
            )
        else:
            self.ctx.record(
                "stripe",
                EventKind.REFUND_OUTSIDE,
                f"Refund {refund_id} was made outside dealflow; it is counted when "
                "Stripe reports the charge refunded",
                m,
            )

    def charge_refunded(
        self, m: MilestoneRun, charge_id: str, intent_id: str | None, total: int | None
    ) -> None:
        """`total` is the charge's refunded total: anything beyond what we know was refunded
        elsewhere (the dashboard) and is counted once, keyed by that total."""
        ctx = self.ctx
        known = self.refunded_by_intent.get(intent_id or "", 0)
        if intent_id is None or total is None or total <= known:
            return
        extra = total - known
        self._count(m, intent_id, f"{charge_id}:refunded:{total}", extra, "succeeded")
        own = min(extra, m.held) if intent_id == m.payment_intent_id else 0
        m.count_returned(own, extra=False)
        m.count_returned(extra - own, extra=True)
        if intent_id == m.payment_intent_id:
            ctx.anomaly(
                f"{ctx.money(extra)} of '{m.title}' was refunded outside dealflow "
                f"while it is {m.state.value}",
                m,
            )
        ctx.record(
            "stripe",
            EventKind.REFUNDED,
            f"{ctx.money(extra)} refunded outside dealflow on charge {charge_id}",
            m,
        )
