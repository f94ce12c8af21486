"""Card holds: a milestone paid by authorization only (capture on approval) is captured when it
is released, or before the authorization lapses (card holds last about 7 days), whatever phase
the milestone is in."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow.contract import EventKind
    from dealflow.messages import PaymentIntentState, PaymentKind
    from workflows import calls
    from workflows.deal.context import DealContext
    from workflows.deal.timers import Timer
    from workflows.milestone import MilestoneRun


class Capture:
    def __init__(self, ctx: DealContext) -> None:
        self.ctx = ctx

    def timers(self, m: MilestoneRun) -> list[Timer]:
        """Timers that protect held money; they run in every phase, disputes included."""
        if m.capture_due_at is None or m.captured or not m.held:
            return []
        return [
            Timer(
                m.capture_due_at,
                "capture the card authorization before it lapses",
                lambda: self._before_lapse(m),
            )
        ]

    async def capture(self, m: MilestoneRun) -> PaymentIntentState | None:
        assert m.payment_intent_id
        ctx = self.ctx
        intent = await ctx.attempt(
            "capturing the payment",
            calls.stripe(
                PaymentActivities.capture_payment, ctx.intent_action(m, m.payment_intent_id)
            ),
            m,
        )
        if intent is not None:
            m.captured = intent.amount_received
            m.charge_id = intent.latest_charge or m.charge_id
            ctx.ledger_payment(
                m, PaymentKind.CHARGE, m.payment_intent_id, m.captured, intent.status, intent
            )
        return intent

    async def _before_lapse(self, m: MilestoneRun) -> None:
        m.capture_due_at = None
        async with self.ctx.stripe_turn():
            if m.captured or not m.held:
                return
            if await self.capture(m) is not None:
                self.ctx.record(
                    "timer",
                    EventKind.CAPTURED,
                    f"{self.ctx.money(m.captured)} for '{m.title}' captured before the card "
                    "authorization lapsed; it stays held until approval",
                    m,
                )
