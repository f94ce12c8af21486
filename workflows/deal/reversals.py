"""Taking a vendor's share back from their transfer, and what happens when Stripe refuses.

A refused reversal (the vendor's balance was short) is money the platform is owed: an anomaly
that names the operator's action, `settle_reversal` (retry it once the vendor's account holds
the money, or absorb it), and the deal does not end before the operator settled it. Deals
before DISPUTES_AND_DEBITS only record the anomaly (`Release.follow_money_back`).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow.contract import EventKind
    from dealflow.messages import (
        PaymentKind,
        ReversalSettlement,
        ReverseTransferInput,
        SettleReversal,
    )
    from workflows import calls
    from workflows.deal.context import DealContext
    from workflows.milestone import MilestoneRun


class Reversals:
    def __init__(self, ctx: DealContext) -> None:
        self.ctx = ctx
        #: One coroutine per refused reversal, waiting for the operator and carrying out their word.
        self._owed: list[asyncio.Task[None]] = []

    async def take_back(self, m: MilestoneRun, amount: int, after: str, purpose: str) -> bool:
        """Reverse `amount` of the vendor's transfer (after `after`, a Stripe id); True when Stripe
        did, and it is counted and recorded."""
        ctx = self.ctx
        assert m.transfer_id
        reversal = await ctx.attempt(
            "reversing the vendor's transfer",
            calls.stripe(
                PaymentActivities.reverse_transfer,
                ReverseTransferInput(
                    deal_id=ctx.spec.deal_id,
                    milestone_key=m.key,
                    transfer_id=m.transfer_id,
                    amount=amount,
                    purpose=purpose,
                ),
            ),
            m,
        )
        if reversal is None:
            return False
        m.reversed += reversal.amount
        ctx.ledger_payment(
            m, PaymentKind.TRANSFER_REVERSAL, reversal.reversal_id, reversal.amount, "reversed"
        )
        ctx.record(
            "workflow",
            EventKind.TRANSFER_REVERSED,
            f"{ctx.money(reversal.amount)} taken back from {ctx.spec.vendor.name}'s transfer "
            f"{m.transfer_id} for '{m.title}' ({reversal.reversal_id}, after {after})",
            m,
        )
        return True

    def refused(self, m: MilestoneRun, amount: int, after: str) -> None:
        """Stripe refused to take `amount` back: owed, an anomaly naming the operator's action,
        and a coroutine that waits for it."""
        ctx = self.ctx
        waited_for = m.reversal_owed > 0  # a coroutine waits for this milestone's settlement
        m.reversal_owed += amount
        m.reversal_after = after
        ctx.anomaly(
            f"{ctx.money(amount)} could not be taken back from {ctx.spec.vendor.name}'s transfer "
            f"{m.transfer_id} for '{m.title}' ({after}): settle_reversal retries it once their "
            "account holds it, or absorbs it; the deal does not end before",
            m,
        )
        if not waited_for:
            self._owed.append(asyncio.create_task(ctx.flushed(self._settle_when_told(m))))

    def settle(self, settle: SettleReversal) -> str:
        """The operator's word; the waiting coroutine carries it out."""
        ctx = self.ctx
        m = ctx.milestones[settle.milestone_key]
        m.settlement = settle
        verb = "retry" if settle.action is ReversalSettlement.RETRY else "absorb"
        notes = f": {settle.notes}" if settle.notes else ""
        ctx.record(
            "operator",
            EventKind.REVERSAL_SETTLEMENT,
            f"The operator asks to {verb} the {ctx.money(m.reversal_owed)} refused reversal "
            f"for '{m.title}'{notes}",
            m,
        )
        return f"Settlement of the refused reversal for '{m.title}' started: {verb}"

    async def all_settled(self) -> None:
        """Wait until every refused reversal is settled (the deal ends after)."""
        while pending := [task for task in self._owed if not task.done()]:
            await asyncio.gather(*pending)

    async def _settle_when_told(self, m: MilestoneRun) -> None:
        ctx = self.ctx
        while m.reversal_owed:
            ctx.before_waiting()
            await workflow.wait_condition(lambda: m.settlement is not None)
            assert m.settlement is not None and m.reversal_after is not None
            owed, after = m.reversal_owed, m.reversal_after
            if m.settlement.action is ReversalSettlement.ABSORB:
                m.reversal_owed = 0
                ctx.record(
                    "operator",
                    EventKind.LOSS_ABSORBED,
                    f"The platform absorbs the {ctx.money(owed)} that could not be taken back "
                    f"from {ctx.spec.vendor.name}'s transfer for '{m.title}' ({after})",
                    m,
                    ctx.operator_of(m.settlement, "operator"),
                )
            else:
                m.reversal_attempts += 1
                async with ctx.stripe_turn():
                    taken = await self.take_back(
                        m, owed, after, purpose=f"{after}:retry-{m.reversal_attempts}"
                    )
                if taken:
                    m.reversal_owed = 0
                else:
                    ctx.anomaly(
                        f"Stripe refused again to take {ctx.money(owed)} back from "
                        f"{ctx.spec.vendor.name}'s transfer for '{m.title}': settle_reversal "
                        "once more when their account holds it, or absorb it",
                        m,
                    )
            m.settlement = None
