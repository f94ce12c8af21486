"""Confirming money: a webhook or a timer only says where to look; Stripe's own copy of the
Checkout Session and its payment intent decides whether a milestone is funded.

A payment counts once (keyed by payment intent, so duplicates and reordering fund nothing
twice), only in the milestone's currency and amount, and never mixing live and test money. A
payment for a milestone that is not waiting for one is given back.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow.contract import EventKind
    from dealflow.messages import (
        CheckoutSessionState,
        EmailKind,
        ExpireCheckoutInput,
        MilestoneState,
        PaymentIntentState,
        PaymentKind,
    )
    from dealflow.money import format_money
    from dealflow.terms import DepositRelease
    from workflows import calls, rules
    from workflows.deal.context import DealContext
    from workflows.deal.debits import BankDebits
    from workflows.deal.refunds import Refunds
    from workflows.deal.work import Work
    from workflows.journal import Source
    from workflows.milestone import MilestoneRun

S = MilestoneState


@dataclass(frozen=True)
class Confirmed:
    """A payment as Stripe confirmed it: captured or only authorized, and how much."""

    intent: PaymentIntentState
    kind: PaymentKind
    amount: int


class Payments:
    def __init__(self, ctx: DealContext, refunds: Refunds, work: Work) -> None:
        self.ctx = ctx
        self.refunds = refunds
        self.work = work
        self.debits = BankDebits(ctx)

    async def confirm_session(
        self, state: CheckoutSessionState, source: Source, found_by: str, hint: MilestoneRun | None
    ) -> None:
        """Follow a Checkout Session to its payment intent; the intent decides (a manual-capture
        session stays 'unpaid' while its intent holds the money)."""
        if state.payment_intent_id is None:
            return
        milestone = self.ctx.find(state.metadata.get("milestone_key"), session_id=state.session_id)
        await self.confirm_intent(state.payment_intent_id, source, found_by, milestone or hint)

    async def confirm_intent(
        self, intent_id: str, source: Source, found_by: str, hint: MilestoneRun | None
    ) -> None:
        ctx = self.ctx
        read = calls.stripe_read_in_task if ctx.payments_read_in_task else calls.stripe
        intent = await ctx.attempt(
            "reading the payment", read(PaymentActivities.retrieve_payment_intent, intent_id), hint
        )
        if intent is None:
            return
        if ctx.stripe_hints_verified():
            problem = rules.payment_owner_problem(intent.metadata, ctx.spec.deal_id, ctx.milestones)
            if problem is not None:
                ctx.anomaly(f"Payment {intent_id} {problem}: nothing funded", hint)
                return
            m = ctx.milestones[intent.metadata["milestone_key"]]
        else:
            m = ctx.find(intent.metadata.get("milestone_key"), intent_id=intent_id) or hint
            if m is None:
                ctx.anomaly(f"Payment {intent_id} names no milestone of this deal; nothing funded")
                return
        await self._apply(m, intent, source, found_by)

    async def _apply(
        self, m: MilestoneRun, intent: PaymentIntentState, source: Source, found_by: str
    ) -> None:
        ctx = self.ctx
        pi = intent.payment_intent_id
        if pi == m.payment_intent_id or pi in m.extra_intents:
            return  # counted already: a duplicate or reordered event
        kind, amount = rules.confirmed_money(intent)
        if kind is None:
            if ctx.disputes_and_debits and self.debits.take(m, intent, source):
                return
            ctx.record(
                source,
                EventKind.PAYMENT_PENDING,
                f"Payment {pi} for '{m.title}' is not complete yet (Stripe: {intent.status})",
                m,
            )
            return
        if intent.currency.lower() != ctx.spec.currency or amount != m.amount_due:
            m.extra_intents.append(pi)
            ctx.anomaly(
                f"Payment {pi} for '{m.title}' is {format_money(amount, intent.currency.lower())}, "
                f"the milestone is {ctx.money(m.amount_due)}: nothing funded",
                m,
            )
            return
        if ctx.livemode is not None and intent.livemode != ctx.livemode:
            m.extra_intents.append(pi)
            ctx.anomaly(f"Payment {pi} mixes live and test money with this deal: nothing funded", m)
            return
        paid = Confirmed(intent, kind, amount)
        waiting = m.state is S.AWAITING_FUNDING or self.debits.settling(m, pi)
        if waiting and ctx.stop is None:
            self._fund(m, paid, source, found_by)
        else:
            await self._refund_extra(m, paid, source)

    def _fund(self, m: MilestoneRun, paid: Confirmed, source: Source, found_by: str) -> None:
        ctx = self.ctx
        intent, kind, amount = paid.intent, paid.kind, paid.amount
        now = workflow.now()
        m.payment_intent_id = intent.payment_intent_id
        m.charge_id = intent.latest_charge
        m.livemode = intent.livemode
        m.sandbox = intent.sandbox
        m.funded = amount
        if ctx.livemode is None:
            ctx.livemode = intent.livemode
        if ctx.lean and intent.metadata.get("generation") == str(m.generation):
            # Paid through the open Checkout Session, which Stripe has thereby completed:
            # nothing is left open to expire.
            m.session = None
            m.replace_at = m.reconcile_at = None
        if m.state is S.PROCESSING:
            self.debits.settled(m)
        if kind is PaymentKind.CHARGE:
            m.captured = amount
            held = "captured"
        else:
            m.capture_due_at = now + ctx.policy.capture_before_lapse
            held = "authorized on the card; captured on approval"
        ctx.set_state(
            m,
            S.FUNDED,
            source,
            EventKind.FUNDED,
            f"'{m.title}' funded: {ctx.money(amount)} {held} (payment {m.payment_intent_id}, "
            f"confirmed by {found_by})",
        )
        ctx.ledger_payment(m, kind, intent.payment_intent_id, amount, intent.status, intent)
        ctx.notify(EmailKind.PAYMENT_RECEIVED, "client", f"payment_received:{m.key}", m)
        if ctx.deal_terms and m.spec.deposit:
            self._deposit_funded(m)
            return
        self.work.hand_off(m)
        ctx.set_state(
            m,
            S.IN_PROGRESS,
            "workflow",
            EventKind.WORK_STARTED,
            f"Work order for '{m.title}' sent to {ctx.spec.vendor.name}",
        )

    def _deposit_funded(self, m: MilestoneRun) -> None:
        """A deposit needs no work: it is released now, or held until the first milestone after
        it is released (`DealWorkflow` releases it then), as the policy says."""
        ctx = self.ctx
        if ctx.policy.deposit_release is DepositRelease.ON_FUNDING:
            ctx.set_state(
                m,
                S.APPROVED,
                "workflow",
                EventKind.APPROVED,
                f"'{m.title}' is a deposit: released on funding (policy.deposit_release)",
            )
            return
        ctx.record(
            "workflow",
            EventKind.FUNDED,
            f"'{m.title}' is a deposit: held until the first milestone is released "
            "(policy.deposit_release)",
            m,
        )

    async def _refund_extra(self, m: MilestoneRun, paid: Confirmed, source: Source) -> None:
        """Money arrived for a milestone that is not waiting for it (paid twice, or after the
        deal stopped): give it back and close any payment link still open."""
        intent, kind, amount = paid.intent, paid.kind, paid.amount
        pi = intent.payment_intent_id
        m.extra_intents.append(pi)
        what = "came after the deal stopped" if self.ctx.stop is not None else "is a second payment"
        self.ctx.record(
            source,
            EventKind.DUPLICATE_PAYMENT,
            f"Payment {pi} of {self.ctx.money(amount)} for '{m.title}' {what}: returning it",
            m,
        )
        self.ctx.ledger_payment(m, kind, pi, amount, intent.status, intent)
        await self.close_checkout(m)
        await self.refunds.give_back(
            m,
            pi,
            captured=kind is PaymentKind.CHARGE,
            amount=amount,
            reason="duplicate",
            purpose=f"duplicate:{pi}",
            extra=True,
        )

    async def close_checkout(self, m: MilestoneRun) -> bool:
        """Expire the open Checkout Session (idempotent); a session paid meanwhile is checked.
        True when no session is left open."""
        ctx = self.ctx
        session = m.session
        if session is None:
            return True
        state = await ctx.attempt(
            "expiring the payment link",
            calls.stripe(
                PaymentActivities.expire_checkout_session,
                ExpireCheckoutInput(
                    deal_id=ctx.spec.deal_id, milestone_key=m.key, session_id=session.session_id
                ),
            ),
            m,
        )
        if state is None or state.status == "open":
            return False
        m.session = None
        m.replace_at = m.reconcile_at = None
        if state.status == "expired":
            ctx.record(
                "workflow",
                EventKind.PAYMENT_LINK_EXPIRED,
                f"Payment link {session.session_id} expired",
                m,
            )
        elif state.payment_intent_id not in (None, m.payment_intent_id):
            await self.confirm_session(state, "workflow", "closing the payment link", m)
        return True
