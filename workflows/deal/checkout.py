"""Funding a milestone: one Checkout Session at a time, its link mailed and reminded of, replaced
when it expires unpaid, Stripe asked directly when no payment webhook comes, and the deal
expired when the fund window ends. What a payment means is for `payments.Payments` to decide.
With the deal's terms (`ctx.deal_terms`), reminders follow the policy's cadence around the
payment's due date, and a late fee closes the link for the old amount and sends one for the new."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow import terms
    from dealflow.contract import EventKind
    from dealflow.messages import (
        CaptureMethod,
        CreateCheckoutInput,
        DealStage,
        EmailKind,
        MilestoneState,
    )
    from dealflow.models import CapturePolicy
    from workflows import calls, rules
    from workflows.deal.context import DealContext
    from workflows.deal.continuation import Continuation
    from workflows.deal.payments import Payments
    from workflows.deal.timers import Timer
    from workflows.milestone import MilestoneRun

S = MilestoneState


class Checkout:
    def __init__(self, ctx: DealContext, payments: Payments, continuation: Continuation) -> None:
        self.ctx = ctx
        self.payments = payments
        self.continuation = continuation

    async def funding_phase(self, m: MilestoneRun) -> None:
        """Open a payment link and wait for the money; a link whose amount or title an accepted
        amendment changed (`terms_changed`) is closed, and the next phase opens a new one (its
        due date, reminders and late fees planned again from the new terms). An amendment that
        re-dates the milestone keeps the link and plans its dates again."""
        if self.ctx.deal_terms and m.payment_due_at is None:
            self._plan_terms(m)
        if not self.continuation.resumes_funding(m):
            await self._open(m)

        def replan() -> bool:
            return self.ctx.deal_terms and m.payment_due_at is None and not m.terms_changed

        while True:
            await self.ctx.timers.run(
                lambda: m.state is S.AWAITING_FUNDING and not m.terms_changed and not replan(),
                lambda: self._timers(m),
            )
            if not (m.state is S.AWAITING_FUNDING and replan()):
                break
            self._plan_terms(m)
        if m.state is not S.AWAITING_FUNDING or m.terms_changed:
            if m.terms_changed:
                m.terms_changed = False
                m.payment_due_at = None
            async with self.ctx.stripe_turn():
                await self.payments.close_checkout(m)

    def _timers(self, m: MilestoneRun) -> list[Timer]:
        assert m.funding_deadline and m.next_fund_reminder_at
        timers = [
            Timer(
                m.funding_deadline,
                f"expire the deal: '{m.title}' is still unfunded",
                lambda: self._fund_window_lapsed(m),
            ),
            *self._late_fee_timers(m),
        ]
        if m.session is None:
            timers.append(
                Timer(
                    m.next_fund_reminder_at,
                    "try again to create the payment link",
                    lambda: self._retry(m),
                )
            )
            return timers
        if self._cadence:
            reminder_at = m.reminders_due[0] if m.reminders_due else None
        else:
            reminder_at = m.next_fund_reminder_at
        if reminder_at is not None:
            timers.append(
                Timer(reminder_at, "remind the client to pay", lambda: self._reminder(m))
            )
        if m.replace_at:
            timers.append(
                Timer(
                    m.replace_at,
                    "replace the payment link if it expired unpaid",
                    lambda: self._replace(m),
                )
            )
        if m.reconcile_at:
            timers.append(
                Timer(
                    m.reconcile_at,
                    "ask Stripe whether the payment went through",
                    lambda: self._reconcile(m),
                )
            )
        return timers

    async def _open(self, m: MilestoneRun) -> None:
        """Create the next Checkout Session and mail its link; a failure retries at the next
        reminder."""
        ctx = self.ctx
        async with ctx.stripe_turn():
            now = workflow.now()
            if m.state is not S.AWAITING_FUNDING or ctx.stop is not None:
                return
            m.generation += 1
            session = await ctx.attempt(
                "creating the payment link",
                calls.stripe(
                    PaymentActivities.create_checkout_session,
                    CreateCheckoutInput(
                        deal_id=ctx.spec.deal_id,
                        milestone_key=m.key,
                        generation=m.generation,
                        title=f"{ctx.spec.title}: {m.title}",
                        amount=m.amount_due,
                        currency=ctx.spec.currency,
                        client_email=str(ctx.spec.client.email),
                        capture_method=(
                            CaptureMethod.MANUAL
                            if ctx.policy.capture is CapturePolicy.ON_APPROVAL
                            else CaptureMethod.AUTOMATIC
                        ),
                        expires_at=now + ctx.policy.checkout_session_ttl,
                        payment_method_types=(
                            [method.value for method in ctx.spec.payment_methods_of(m.spec)]
                            if ctx.disputes_and_debits
                            else None
                        ),
                    ),
                ),
                m,
            )
            if session is None:
                ctx.record(
                    "workflow",
                    EventKind.CHECKOUT_RETRY,
                    "The payment link is retried with the next reminder",
                    m,
                )
                return
            m.session = session
            m.session_ids.append(session.session_id)
            m.replace_at = session.expires_at
            if ctx.stripe_hints_verified():
                m.poll_interval = rules.next_poll_interval(None, ctx.policy.reconcile_after)
                m.polls = 0
                m.reconcile_at = now + m.poll_interval
            else:
                m.reconcile_at = now + ctx.policy.reconcile_after
            ctx.record(
                "workflow",
                EventKind.PAYMENT_LINK,
                f"Payment link {m.generation} for '{m.title}' created ({session.session_id}), "
                f"valid until {session.expires_at.isoformat()}",
                m,
            )
            ctx.notify(
                EmailKind.PAYMENT_LINK,
                "client",
                f"payment_link:{m.key}:{m.generation}",
                m,
                checkout_url=session.url,
                checkout_expires_at=session.expires_at.isoformat(),
                late_fee_notice=self._late_fee_notice(m),
            )

    async def _retry(self, m: MilestoneRun) -> None:
        """Creating the link failed before: try again in the reminder's slot."""
        m.next_fund_reminder_at = workflow.now() + self.ctx.policy.reminder_interval
        await self._open(m)

    async def _reminder(self, m: MilestoneRun) -> None:
        assert m.session
        m.fund_reminders += 1
        if self._cadence:
            # The first is the one due now; any other already past is not sent late.
            m.reminders_due = [at for at in m.reminders_due[1:] if at > workflow.now()]
        else:
            m.next_fund_reminder_at = workflow.now() + self.ctx.policy.reminder_interval
        self.ctx.record(
            "timer",
            EventKind.FUND_REMINDER,
            f"Payment reminder {m.fund_reminders} for '{m.title}'",
            m,
        )
        self.ctx.notify(
            EmailKind.FUND_REMINDER,
            "client",
            f"fund_reminder:{m.key}:{m.fund_reminders}",
            m,
            checkout_url=m.session.url,
            checkout_expires_at=m.session.expires_at.isoformat(),
            late_fee_notice=self._late_fee_notice(m),
        )

    async def _reconcile(self, m: MilestoneRun) -> None:
        """No payment webhook came in time: ask Stripe directly (webhooks can be lost), again
        and again on a backoff while the link stays open and unpaid."""
        ctx = self.ctx
        m.reconcile_at = None
        polling = ctx.stripe_hints_verified()
        async with ctx.stripe_turn():
            if m.state is not S.AWAITING_FUNDING or m.session is None:
                return
            if not polling:
                ctx.record(
                    "timer",
                    EventKind.RECONCILIATION,
                    f"No payment webhook for '{m.title}' after "
                    f"{rules.span(ctx.policy.reconcile_after)}: asking Stripe",
                    m,
                )
            elif m.polls == 0:
                ctx.record(
                    "timer",
                    EventKind.RECONCILIATION,
                    f"No payment webhook for '{m.title}' yet: asking Stripe, then again on a "
                    f"backoff up to every {rules.span(ctx.policy.reconcile_after)}",
                    m,
                )
            m.polls += 1
            state = await ctx.attempt(
                "reading the Checkout Session",
                calls.stripe(PaymentActivities.retrieve_checkout_session, m.session.session_id),
                m,
            )
            if state is not None:
                await self.payments.confirm_session(state, "timer", "reconciliation", m)
            if polling and m.state is S.AWAITING_FUNDING and m.session is not None:
                m.poll_interval = rules.next_poll_interval(
                    m.poll_interval, ctx.policy.reconcile_after
                )
                m.reconcile_at = workflow.now() + m.poll_interval

    async def _replace(self, m: MilestoneRun) -> None:
        """The session expires: fund if it was paid, else expire it and only then make the next."""
        ctx = self.ctx
        async with ctx.stripe_turn():
            if m.state is not S.AWAITING_FUNDING or m.session is None:
                return
            # Until this replacement succeeds, it is tried again each reminder interval.
            m.replace_at = workflow.now() + ctx.policy.reminder_interval
            if not await self._close_unpaid(
                m, "reading the expiring Checkout Session", "the payment link's expiry check"
            ):
                return
        await self._open(m)
        await self.continuation.at_seam(m, still=lambda: m.state is S.AWAITING_FUNDING)

    async def _fund_window_lapsed(self, m: MilestoneRun) -> None:
        self.ctx.request_stop(
            DealStage.EXPIRED,
            f"'{m.title}' was not funded within {rules.span(self.ctx.policy.fund_window)}",
            "timer",
        )

    async def _close_unpaid(self, m: MilestoneRun, reading: str, found_by: str) -> bool:
        """Fund the open session if it was paid, else expire it. True when no link is left open
        and the milestone still awaits its money."""
        if m.session is not None:
            state = await self.ctx.attempt(
                reading,
                calls.stripe(PaymentActivities.retrieve_checkout_session, m.session.session_id),
                m,
            )
            if state is None:
                return False
            await self.payments.confirm_session(state, "timer", found_by, m)
        return m.state is S.AWAITING_FUNDING and await self.payments.close_checkout(m)

    # ------------------------------------------------------------------ the deal's terms

    @property
    def _cadence(self) -> bool:
        """Whether payment reminders follow the policy's cadence instead of its interval."""
        return self.ctx.deal_terms and self.ctx.policy.reminders is not None

    def _plan_terms(self, m: MilestoneRun) -> None:
        """When the payment is due, the first late fee and the reminders of the cadence."""
        now = workflow.now()
        due = m.payment_due_at = terms.payment_due_at(m.due_at, now, m.spec.deposit)
        self._next_late_fee(m)
        if self.ctx.policy.reminders is not None:
            m.reminders_due = terms.reminder_times(self.ctx.policy.reminders, due, now)

    def _next_late_fee(self, m: MilestoneRun) -> None:
        fee = self.ctx.spec.late_fee_of(m.spec)
        notice = (
            terms.next_late_fee(
                fee, m.spec.amount, m.payment_due_at, m.late_fees_applied, m.late_fee
            )
            if fee is not None and m.payment_due_at is not None
            else None
        )
        m.next_late_fee_at = notice.at if notice else None
        m.next_late_fee = notice.amount if notice else 0

    def _late_fee_timers(self, m: MilestoneRun) -> list[Timer]:
        if m.next_late_fee_at is None:
            return []
        return [
            Timer(
                m.next_late_fee_at,
                f"add a late fee of {self.ctx.money(m.next_late_fee)} to '{m.title}'",
                lambda: self._add_late_fee(m),
            )
        ]

    async def _add_late_fee(self, m: MilestoneRun) -> None:
        """The payment is late: the link for the old amount is closed (a payment made on it
        meanwhile funds the milestone, fee-free), the fee added, and a link for the new sent."""
        ctx = self.ctx
        async with ctx.stripe_turn():
            if m.state is not S.AWAITING_FUNDING or ctx.stop is not None:
                return
            if not await self._close_unpaid(
                m, "reading the Checkout Session before the late fee", "the late fee's check"
            ):
                if m.state is S.AWAITING_FUNDING:
                    m.next_late_fee_at = workflow.now() + ctx.policy.reconcile_after
                return
            fee = m.next_late_fee
            m.late_fee += fee
            m.late_fees_applied += 1
            self._next_late_fee(m)
            ctx.record(
                "timer",
                EventKind.LATE_FEE,
                f"'{m.title}' is unpaid after its due date: late fee {m.late_fees_applied} of "
                f"{ctx.money(fee)} added, {ctx.money(m.amount_due)} now due",
                m,
            )
        await self._open(m)

    def _late_fee_notice(self, m: MilestoneRun) -> str:
        """The payment mails' word on late fees: those added, and the next one before it comes."""
        fee = self.ctx.spec.late_fee_of(m.spec)
        added = f"This includes late fees of {self.ctx.money(m.late_fee)}. " if m.late_fee else ""
        if fee is None or m.next_late_fee_at is None:
            return added.strip()
        return (
            f"{added}If it is still unpaid on {m.next_late_fee_at:%Y-%m-%d %H:%M} UTC, a late fee "
            f"of {self.ctx.money(m.next_late_fee)} is added (late fee: "
            f"{terms.describe_late_fee(fee, m.spec.amount, self.ctx.spec.currency)})."
        )
