"""Bank debits (ACH, SEPA): a milestone paid by bank is *processing* for days while Stripe
collects the money, then funded (Stripe says the debit succeeded) or back to awaiting funding
with a new payment link (it failed).

`BankDebits` decides what Stripe's copy of a payment intent means for a debit; `Payments` asks
it for every payment that is not money yet (the processing phase is `processing.DebitWatch`).
Only deals built with DISPUTES_AND_DEBITS get here.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import EventKind
    from dealflow.messages import EmailKind, MilestoneState, PaymentIntentState, StripeEventSignal
    from workflows import rules
    from workflows.deal.context import DealContext
    from workflows.journal import Source
    from workflows.milestone import MilestoneRun

S = MilestoneState

#: Stripe's word that a debit's outcome is known: its session's `async_payment_*` events (the
#: succeeded one is a payment event already), and the intent's own failure.
DEBIT_OUTCOME_EVENTS = frozenset(
    {"checkout.session.async_payment_failed", "payment_intent.payment_failed"}
)


class BankDebits:
    def __init__(self, ctx: DealContext) -> None:
        self.ctx = ctx

    def concerns_a_debit(self, event: StripeEventSignal) -> bool:
        """Whether a failure event is about a debit (to be confirmed by reading Stripe): a
        session's failed async payment, or the failure of an intent that is processing. A
        declined card's `payment_intent.payment_failed` is not: its link stays open."""
        if event.type == "checkout.session.async_payment_failed":
            return True
        return event.type in DEBIT_OUTCOME_EVENTS and any(
            m.processing_intent_id == event.payment_intent_id for m in self.ctx.milestones.values()
        )

    def settling(self, m: MilestoneRun, intent_id: str) -> bool:
        """Whether `intent_id` is the debit this milestone is processing, so it may fund it."""
        return m.state is S.PROCESSING and m.processing_intent_id == intent_id

    def take(self, m: MilestoneRun, intent: PaymentIntentState, source: Source) -> bool:
        """Act on Stripe's copy of a payment that is not money (yet): a debit of the open link
        starts processing, a processing (or just completed) debit that failed asks for a new
        payment. False when it is neither."""
        pi = intent.payment_intent_id
        of_open_link = intent.metadata.get("generation") == str(m.generation)
        awaiting = m.state is S.AWAITING_FUNDING and self.ctx.stop is None
        if intent.status == "processing" and awaiting and of_open_link:
            self._processing(m, intent, source)
            return True
        if rules.debit_failed(intent) and (
            m.processing_intent_id == pi or (awaiting and of_open_link)
        ):
            self._failed(m, intent, source)
            return True
        return False

    def settled(self, m: MilestoneRun) -> None:
        """The debit succeeded and funds the milestone: nothing is processing any more."""
        m.processing_until = m.processing_check_at = None

    def _processing(self, m: MilestoneRun, intent: PaymentIntentState, source: Source) -> None:
        ctx = self.ctx
        now = workflow.now()
        days = self._business_days(intent.payment_method_type)
        m.processing_intent_id = intent.payment_intent_id
        m.processing_method = intent.payment_method_type
        m.processing_until = rules.business_days_after(now, days)
        m.processing_check_at = m.processing_until + ctx.policy.debit_margin
        # The client completed the open Checkout Session: nothing is left open to expire.
        m.session = None
        m.replace_at = m.reconcile_at = None
        ctx.set_state(
            m,
            S.PROCESSING,
            source,
            EventKind.PAYMENT_PROCESSING,
            f"'{m.title}' paid by bank debit ({intent.payment_method_type or 'bank'}, payment "
            f"{intent.payment_intent_id}): {ctx.money(intent.amount)} processing, expected within "
            f"{days} business days (by {m.processing_until.date().isoformat()})",
        )

    def _failed(self, m: MilestoneRun, intent: PaymentIntentState, source: Source) -> None:
        """The bank refused the debit: counted as refused, the client told, and a new link made
        (by the funding phase, or now by replacing the completed one)."""
        ctx = self.ctx
        reason = intent.failure_message or "the bank did not pay the debit"
        m.extra_intents.append(intent.payment_intent_id)
        m.processing_intent_id = m.processing_method = None
        m.processing_until = m.processing_check_at = None
        if ctx.stop is not None:
            # The deal is winding down: no new link, and nothing was taken to give back.
            ctx.record(
                source,
                EventKind.DEBIT_FAILED,
                f"The bank debit {intent.payment_intent_id} for '{m.title}' failed ({reason}); "
                "the deal has stopped, so nothing was taken and no new link follows",
                m,
            )
            return
        message = (
            f"The bank debit {intent.payment_intent_id} for '{m.title}' failed ({reason}): "
            "a new payment link follows"
        )
        if m.state is S.PROCESSING:
            ctx.set_state(m, S.AWAITING_FUNDING, source, EventKind.DEBIT_FAILED, message)
        else:
            # Stripe's failure came before the session's completion: the open link is spent.
            ctx.record(source, EventKind.DEBIT_FAILED, message, m)
            m.replace_at = workflow.now()
        ctx.notify(
            EmailKind.DEBIT_FAILED,
            "client",
            f"debit_failed:{m.key}:{intent.payment_intent_id}",
            m,
            reason=reason,
        )

    def _business_days(self, method: str | None) -> int:
        policy = self.ctx.policy
        days = {"us_bank_account": policy.us_bank_account_days, "sepa_debit": policy.sepa_debit_days}
        return days.get(method or "", max(days.values()))
