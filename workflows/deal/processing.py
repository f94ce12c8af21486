"""A milestone's processing phase: while a bank debit is collected, no funding expiry or reminder
runs against it, and a debit that hears nothing from Stripe within the policy's business days
(plus a margin) is looked up at Stripe, again and again, rather than forgotten. A deal that stops
meanwhile waits for the debit's outcome the same way: money Stripe collects after the deal ended
would be nobody's to give back."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import EventKind
    from dealflow.messages import MilestoneState
    from workflows.deal.context import DealContext
    from workflows.deal.payments import Payments
    from workflows.deal.timers import Timer
    from workflows.milestone import MilestoneRun

S = MilestoneState
LOOK_UP = "ask Stripe whether the bank debit went through"


class DebitWatch:
    """The processing phase: wait for Stripe's word on the debit, and ask Stripe when it is late."""

    def __init__(self, ctx: DealContext, payments: Payments) -> None:
        self.ctx = ctx
        self.payments = payments

    async def processing_phase(self, m: MilestoneRun) -> None:
        await self.ctx.timers.run(lambda: m.state is S.PROCESSING, lambda: self._timers(m))

    async def outcome(self, m: MilestoneRun) -> None:
        """A stopping deal: wait until Stripe says how the milestone's debit ended (if one is
        processing). The payment then counts as one after the stop, and is given back."""
        ctx = self.ctx
        while self._open(m):
            assert m.processing_check_at
            delay = m.processing_check_at - workflow.now()
            if delay > timedelta(0):
                ctx.before_waiting()
                try:
                    await workflow.wait_condition(
                        lambda: not self._open(m), timeout=delay, timeout_summary=LOOK_UP
                    )
                    continue
                except TimeoutError:
                    pass
            await self._look_up(m)

    def _open(self, m: MilestoneRun) -> bool:
        """A debit still processing that no outcome has been counted for."""
        intent_id = m.processing_intent_id
        return (
            m.state is S.PROCESSING and intent_id is not None and intent_id not in m.extra_intents
        )

    def _timers(self, m: MilestoneRun) -> list[Timer]:
        assert m.processing_check_at
        return [Timer(m.processing_check_at, LOOK_UP, lambda: self._look_up(m))]

    async def _look_up(self, m: MilestoneRun) -> None:
        """No word from Stripe within the processing days: read the payment, and look again
        after `reconcile_after` while it is still processing."""
        ctx = self.ctx
        async with ctx.stripe_turn():
            intent_id = m.processing_intent_id
            if not self._open(m) or intent_id is None:
                return
            m.processing_check_at = workflow.now() + ctx.policy.reconcile_after
            ctx.record(
                "timer",
                EventKind.RECONCILIATION,
                f"No word from Stripe on the bank debit for '{m.title}' by "
                f"{(m.processing_until or workflow.now()).date().isoformat()}: asking Stripe",
                m,
            )
            await self.payments.confirm_intent(intent_id, "timer", "reconciliation", m)
