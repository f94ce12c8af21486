"""DealWorkflow: one deal, from the statement of work to the last receipt, as a durable workflow.

The main coroutine walks the deal: SOW sent, signature, then each milestone in order (funding,
work, review, release) and finally completion, or cancellation/expiry with compensations.
Everything that waits is a durable timer (`workflow.wait_condition` with a timeout), so the
deal's clocks survive restarts and are skipped in tests.

Human actions arrive both as signals and as updates of the same name; both run one method, and
the update's validator runs the same check, so an update that is not valid now is refused with
the reason and an invalid signal is only recorded. Handlers change state and send notices; money
moves only in the main coroutine and in the Stripe event handler, one Stripe conversation at a
time (`_stripe_lock`). Stripe events are hints: the workflow re-reads Stripe before it believes
one, and it keys funding by payment intent so duplicates and reordering fund a milestone once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, get_args

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # pydantic imports it lazily to validate EmailStr fields; load it here, outside the sandbox.
    import email_validator  # noqa: F401

    from activities.payments import PaymentActivities
    from dealflow.messages import (
        ActionResult,
        ApproveMilestone,
        ArtifactDeliveryInput,
        CancelDeal,
        CaptureMethod,
        CheckoutSessionState,
        CreateCheckoutInput,
        Deadline,
        DealStage,
        DealStatus,
        Deliverable,
        DisputeResolution,
        EmailAttachment,
        EmailInput,
        EmailKind,
        ExpireCheckoutInput,
        MilestoneState,
        MoneyTotals,
        OpenDispute,
        PaymentIntentAction,
        PaymentIntentState,
        PaymentKind,
        PaymentRecord,
        ReceiptInput,
        ReceiptResult,
        RefundInput,
        RequestRevision,
        ResolveDispute,
        Signature,
        SignSow,
        StripeEventSignal,
        SubmitDeliverable,
        TransferInput,
        WorkOrderInput,
    )
    from dealflow.models import (
        CancelRefund,
        CapturePolicy,
        DealSpec,
        first_text_problem,
        format_money,
    )
    from workflows import calls, rules
    from workflows.journal import Journal, Source, View, failure
    from workflows.mail import build_email
    from workflows.milestone import DISPUTABLE, MilestoneRun, PendingResolution

S = MilestoneState
#: The deal's stage while a milestone is in a state; refunded and cancelled have none.
STAGE_OF = {s: DealStage(s.value) for s in S if s.value in DealStage._value2member_map_}
Party = Literal["client", "vendor"]
Payments = PaymentActivities
T = TypeVar("T")
A = TypeVar("A")

#: Stripe event types that may mean a milestone got paid; each is confirmed by reading Stripe.
#: `workflow.patched` id: payments count only when Stripe's copy names this deal and milestone;
#: refund and dispute events are re-read from Stripe; open Checkout Sessions are polled on a backoff.
STRIPE_HINTS_VERIFIED = "stripe-hints-verified"
#: `workflow.patched` id: actions whose text breaks its rule (NUL, lone surrogates, controls) are
#: refused here too, for senders that bypass the bridge (Temporal UI, CLI). Decided once, at the
#: start, because validators may not call `workflow.patched`.
REFUSE_BAD_TEXT = "refuse-bad-text"
#: `workflow.patched` id: every step issues its own commands, in that step. Each coroutine writes
#: only its own ledger rows, and work started beside the deal (mails, hand-offs, receipts) starts
#: its activity in the step that asks for it, not when its task first runs. sdk-core may hand one
#: workflow task's jobs to the workflow in one activation on the first run and in two on replay
#: (after a worker crash, when a status query made a fresh worker apply new events early); with
#: each job's commands issued in its own step, both give the same commands in the same order.
OWN_STEPS = "steps-issue-their-own-commands"

PAYMENT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
    }
)


@dataclass(frozen=True)
class Timer:
    """A durable deadline of the current phase and what the workflow does when it comes."""

    at: datetime
    action: str
    fire: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class StopRequest:
    stage: DealStage
    reason: str
    source: Source


@dataclass(frozen=True)
class Action:
    """One human action: who performs it, when it is allowed, and what it does."""

    name: str
    source: Callable[[Any], Source]
    refusal: Callable[[Any], str | None]
    apply: Callable[[Any], str]


@workflow.defn
class DealWorkflow:
    @workflow.init
    def __init__(self, spec: DealSpec) -> None:
        self._spec = spec
        self._policy = spec.policy
        self._sow_sha256 = hashlib.sha256(spec.sow.encode()).hexdigest()
        self._stage = DealStage.SOW_SENT
        self._milestones = {m.key: MilestoneRun(spec=m) for m in spec.milestones}
        self._signature: Signature | None = None
        self._livemode: bool | None = None
        self._deadline: Deadline | None = None
        self._stop: StopRequest | None = None
        self._sign_deadline: datetime | None = None
        self._next_sign_reminder_at: datetime | None = None
        self._sign_reminders = 0
        self._seen_events: set[str] = set()
        self._refund_ids: set[str] = set()
        self._refunded_by_intent: dict[str, int] = {}
        self._stripe_lock = asyncio.Lock()
        self._journal = Journal(spec, self._view)
        self._background: list[asyncio.Task[None]] = []
        # Decided here, not in `run`: an update can come in the deal's first activation, and
        # the SDK runs its handler before `run` starts.
        self._text_checked = workflow.patched(REFUSE_BAD_TEXT)
        self._own_steps = workflow.patched(OWN_STEPS)
        if self._own_steps:
            self._journal.by_owner(asyncio.current_task)
        #: Stripe events about a milestone, besides the payment events that may fund one.
        #: Stripe events about a milestone, besides the payment events that may fund one, as
        #: deals recorded before STRIPE_HINTS_VERIFIED took them: on the webhook's word.
        self._milestone_events: dict[str, Callable[[MilestoneRun, StripeEventSignal], None]] = {
            "payment_intent.payment_failed": lambda m, _: self._payment_failed(m),
            "charge.dispute.created": lambda m, e: self._chargeback_opened(m, e.object_id),
            "charge.dispute.closed": lambda m, e: self._chargeback_closed(
                m, e.object_id, e.status
            ),
            "refund.created": lambda m, e: self._refund_seen(m, e.object_id),
            "charge.refunded": lambda m, e: self._charge_refunded(
                m, e.object_id, e.payment_intent_id, e.amount
            ),
        }
        #: The same events re-read from Stripe first: the object's own payment decides which
        #: milestone (if any) it concerns, and its amounts are Stripe's, not the webhook's.
        self._verified_events: dict[str, Callable[[StripeEventSignal], Awaitable[None]]] = {
            "charge.dispute.created": self._verified_dispute,
            "charge.dispute.closed": self._verified_dispute,
            "refund.created": self._verified_refund,
            "charge.refunded": self._verified_charge_refund,
        }
        self._actions: dict[type, Action] = {
            SignSow: Action("sign_sow", lambda _: "client", self._refuse_sign, self._sign),
            SubmitDeliverable: Action(
                "submit_deliverable", lambda _: "vendor", self._refuse_submit, self._submit
            ),
            ApproveMilestone: Action(
                "approve_milestone", lambda _: "client", self._refuse_approve, self._approve
            ),
            RequestRevision: Action(
                "request_revision", lambda _: "client", self._refuse_revision, self._revise
            ),
            OpenDispute: Action(
                "open_dispute", lambda i: i.opened_by, self._refuse_dispute, self._dispute
            ),
            ResolveDispute: Action(
                "resolve_dispute", lambda _: "operator", self._refuse_resolve, self._resolve_later
            ),
            CancelDeal: Action("cancel_deal", _requester, lambda _: None, self._cancel),
        }

    # ------------------------------------------------------------------ the deal, start to end

    @workflow.run
    async def run(self, spec: DealSpec) -> DealStatus:
        legacy_ledger_writer = self._journal.start()
        if workflow.memo_value("title", None) is None:
            workflow.upsert_memo({"title": spec.title})
        self._send_sow()
        await self._await_signature()
        for milestone in self._milestones.values():
            if self._stop is not None:
                break
            await self._run_milestone(milestone)
        if self._stop is not None:
            await self._wind_down(self._stop)
        else:
            self._complete()
        if self._own_steps:
            await self._settle()
        else:
            self._journal.flush()
            await workflow.wait_condition(workflow.all_handlers_finished)
            while pending := [task for task in self._background if not task.done()]:
                await asyncio.gather(*pending)
            await self._journal.drain(legacy_ledger_writer)
        return self.status()

    async def _settle(self) -> None:
        """Wait for message handlers, work beside the deal and ledger batches until none is
        left: a webhook can still come while the deal winds up (a payment after the end is
        given back), and its handler must not be cut off."""
        while True:
            self._journal.flush()
            await workflow.wait_condition(workflow.all_handlers_finished)
            while pending := [task for task in self._background if not task.done()]:
                await asyncio.gather(*pending)
            await self._journal.drain(None)
            if workflow.all_handlers_finished():
                return

    def _send_sow(self) -> None:
        now = workflow.now()
        self._sign_deadline = now + self._policy.sign_window
        self._next_sign_reminder_at = now + self._policy.reminder_interval
        self._record(
            "workflow",
            "sow_sent",
            f"Statement of work sent to {self._spec.client.email} for signature "
            f"(SHA-256 {self._sow_sha256[:12]}…)",
        )
        self._notify(
            EmailKind.SOW_SENT,
            "client",
            "sow_sent",
            sow=self._spec.sow,
            sow_sha256=self._sow_sha256,
            milestones=[
                {
                    "title": m.title,
                    "amount_display": self._money(m.spec.amount),
                    "due": (
                        m.spec.due.isoformat()
                        if m.spec.due
                        else f"{m.spec.due_in_days} days after signing"
                    ),
                }
                for m in self._milestones.values()
            ],
            total_display=self._money(self._spec.total_amount),
        )

    async def _await_signature(self) -> None:
        await self._run_timers(lambda: self._stage is DealStage.SOW_SENT, self._signing_timers)

    def _signing_timers(self) -> list[Timer]:
        assert self._sign_deadline and self._next_sign_reminder_at
        return [
            Timer(
                self._sign_deadline, "expire the deal: the SOW is still unsigned", self._sign_lapsed
            ),
            Timer(self._next_sign_reminder_at, "remind the client to sign", self._sign_reminder),
        ]

    async def _sign_reminder(self) -> None:
        self._sign_reminders += 1
        self._next_sign_reminder_at = workflow.now() + self._policy.reminder_interval
        self._record("timer", "sign_reminder", f"Signature reminder {self._sign_reminders} sent")
        self._notify(EmailKind.SIGN_REMINDER, "client", f"sign_reminder:{self._sign_reminders}")

    async def _sign_lapsed(self) -> None:
        self._request_stop(
            DealStage.EXPIRED,
            f"the statement of work was not signed within {_span(self._policy.sign_window)}",
            "timer",
        )

    async def _run_milestone(self, m: MilestoneRun) -> None:
        """Drive one milestone through its phases until it is released or refunded."""
        self._set_state(
            m,
            S.AWAITING_FUNDING,
            "workflow",
            "awaiting_funding",
            f"'{m.title}' awaits funding of {self._money(m.spec.amount)}",
        )
        phases: dict[MilestoneState, Callable[[MilestoneRun], Awaitable[None]]] = {
            S.AWAITING_FUNDING: self._funding_phase,
            S.IN_PROGRESS: self._work_phase,
            S.DELIVERED: self._review_phase,
            S.DISPUTED: self._dispute_phase,
            S.APPROVED: self._release_phase,
        }
        while self._stop is None and m.state in phases:
            await phases[m.state](m)

    def _complete(self) -> None:
        self._stage = DealStage.COMPLETED
        self._deadline = None
        self._record("workflow", "completed", "Every milestone is done: the deal is completed")
        self._notify_both(EmailKind.DEAL_COMPLETED, "deal_completed")

    # ------------------------------------------------------------------ timers

    async def _run_timers(
        self, waiting: Callable[[], bool], timers: Callable[[], list[Timer]]
    ) -> None:
        """While `waiting()` holds and nobody stopped the deal, fire the earliest timer when due."""
        while waiting() and self._stop is None:
            timer = await self._next_timer(waiting, timers())
            if timer is not None:
                self._deadline = None
                await timer.fire()

    async def _next_timer(self, waiting: Callable[[], bool], timers: list[Timer]) -> Timer | None:
        """Sleep until the earliest timer (returned) or until the wait is over (None)."""
        timer = min(timers, key=lambda t: t.at, default=None)
        self._deadline = Deadline(at=timer.at, action=timer.action) if timer else None
        done = lambda: not waiting() or self._stop is not None
        self._journal.flush()
        if timer is None:
            await workflow.wait_condition(done)
            return None
        delay = timer.at - workflow.now()
        if delay <= timedelta(0):
            return None if done() else timer
        try:
            await workflow.wait_condition(done, timeout=delay, timeout_summary=timer.action)
        except TimeoutError:
            return timer
        return None

    def _money_timers(self, m: MilestoneRun) -> list[Timer]:
        """Timers that protect held money; they run in every phase, disputes included."""
        if m.capture_due_at is None or m.captured or not m.held:
            return []
        return [
            Timer(
                m.capture_due_at,
                "capture the card authorization before it lapses",
                lambda: self._capture_before_lapse(m),
            )
        ]

    # ------------------------------------------------------------------ funding

    async def _funding_phase(self, m: MilestoneRun) -> None:
        await self._open_checkout(m)
        await self._run_timers(
            lambda: m.state is S.AWAITING_FUNDING, lambda: self._funding_timers(m)
        )
        if m.state is not S.AWAITING_FUNDING:
            async with self._stripe_turn():
                await self._close_checkout(m)

    def _funding_timers(self, m: MilestoneRun) -> list[Timer]:
        assert m.funding_deadline and m.next_fund_reminder_at
        timers = [
            Timer(
                m.funding_deadline,
                f"expire the deal: '{m.title}' is still unfunded",
                lambda: self._fund_window_lapsed(m),
            ),
        ]
        if m.session is None:
            timers.append(
                Timer(
                    m.next_fund_reminder_at,
                    "try again to create the payment link",
                    lambda: self._retry_checkout(m),
                )
            )
            return timers
        timers.append(
            Timer(
                m.next_fund_reminder_at, "remind the client to pay", lambda: self._fund_reminder(m)
            )
        )
        if m.replace_at:
            timers.append(
                Timer(
                    m.replace_at,
                    "replace the payment link if it expired unpaid",
                    lambda: self._replace_checkout(m),
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

    async def _open_checkout(self, m: MilestoneRun) -> None:
        """Create the next Checkout Session and mail its link; a failure retries at the next
        reminder."""
        async with self._stripe_turn():
            now = workflow.now()
            if m.state is not S.AWAITING_FUNDING or self._stop is not None:
                return
            m.generation += 1
            session = await self._attempt(
                "creating the payment link",
                calls.stripe(
                    Payments.create_checkout_session,
                    CreateCheckoutInput(
                        deal_id=self._spec.deal_id,
                        milestone_key=m.key,
                        generation=m.generation,
                        title=f"{self._spec.title}: {m.title}",
                        amount=m.spec.amount,
                        currency=self._spec.currency,
                        client_email=str(self._spec.client.email),
                        capture_method=(
                            CaptureMethod.MANUAL
                            if self._policy.capture is CapturePolicy.ON_APPROVAL
                            else CaptureMethod.AUTOMATIC
                        ),
                        expires_at=now + self._policy.checkout_session_ttl,
                    ),
                ),
                m,
            )
            if session is None:
                self._record(
                    "workflow",
                    "checkout_retry",
                    "The payment link is retried with the next reminder",
                    m,
                )
                return
            m.session = session
            m.session_ids.append(session.session_id)
            m.replace_at = session.expires_at
            if workflow.patched(STRIPE_HINTS_VERIFIED):
                m.poll_interval = rules.next_poll_interval(None, self._policy.reconcile_after)
                m.polls = 0
                m.reconcile_at = now + m.poll_interval
            else:
                m.reconcile_at = now + self._policy.reconcile_after
            self._record(
                "workflow",
                "payment_link",
                f"Payment link {m.generation} for '{m.title}' created ({session.session_id}), "
                f"valid until {session.expires_at.isoformat()}",
                m,
            )
            self._notify(
                EmailKind.PAYMENT_LINK,
                "client",
                f"payment_link:{m.key}:{m.generation}",
                m,
                checkout_url=session.url,
                checkout_expires_at=session.expires_at.isoformat(),
            )

    async def _retry_checkout(self, m: MilestoneRun) -> None:
        """Creating the link failed before: try again in the reminder's slot."""
        m.next_fund_reminder_at = workflow.now() + self._policy.reminder_interval
        await self._open_checkout(m)

    async def _fund_reminder(self, m: MilestoneRun) -> None:
        assert m.session
        m.fund_reminders += 1
        m.next_fund_reminder_at = workflow.now() + self._policy.reminder_interval
        self._record(
            "timer", "fund_reminder", f"Payment reminder {m.fund_reminders} for '{m.title}'", m
        )
        self._notify(
            EmailKind.FUND_REMINDER,
            "client",
            f"fund_reminder:{m.key}:{m.fund_reminders}",
            m,
            checkout_url=m.session.url,
            checkout_expires_at=m.session.expires_at.isoformat(),
        )

    async def _reconcile(self, m: MilestoneRun) -> None:
        """No payment webhook came in time: ask Stripe directly (webhooks can be lost), again
        and again on a backoff while the link stays open and unpaid."""
        m.reconcile_at = None
        polling = workflow.patched(STRIPE_HINTS_VERIFIED)
        async with self._stripe_turn():
            if m.state is not S.AWAITING_FUNDING or m.session is None:
                return
            if not polling:
                self._record(
                    "timer",
                    "reconciliation",
                    f"No payment webhook for '{m.title}' after "
                    f"{_span(self._policy.reconcile_after)}: asking Stripe",
                    m,
                )
            elif m.polls == 0:
                self._record(
                    "timer",
                    "reconciliation",
                    f"No payment webhook for '{m.title}' yet: asking Stripe, then again on a "
                    f"backoff up to every {_span(self._policy.reconcile_after)}",
                    m,
                )
            m.polls += 1
            state = await self._attempt(
                "reading the Checkout Session",
                calls.stripe(Payments.retrieve_checkout_session, m.session.session_id),
                m,
            )
            if state is not None:
                await self._confirm_session(state, "timer", "reconciliation", m)
            if polling and m.state is S.AWAITING_FUNDING and m.session is not None:
                m.poll_interval = rules.next_poll_interval(
                    m.poll_interval, self._policy.reconcile_after
                )
                m.reconcile_at = workflow.now() + m.poll_interval

    async def _replace_checkout(self, m: MilestoneRun) -> None:
        """The session expires: fund if it was paid, else expire it and only then make the next."""
        async with self._stripe_turn():
            if m.state is not S.AWAITING_FUNDING or m.session is None:
                return
            # Until this replacement succeeds, it is tried again each reminder interval.
            m.replace_at = workflow.now() + self._policy.reminder_interval
            state = await self._attempt(
                "reading the expiring Checkout Session",
                calls.stripe(Payments.retrieve_checkout_session, m.session.session_id),
                m,
            )
            if state is None:
                return
            await self._confirm_session(state, "timer", "the payment link's expiry check", m)
            if m.state is not S.AWAITING_FUNDING or not await self._close_checkout(m):
                return
        await self._open_checkout(m)

    async def _close_checkout(self, m: MilestoneRun) -> bool:
        """Expire the open Checkout Session (idempotent); a session paid meanwhile is checked.
        True when no session is left open."""
        session = m.session
        if session is None:
            return True
        state = await self._attempt(
            "expiring the payment link",
            calls.stripe(
                Payments.expire_checkout_session,
                ExpireCheckoutInput(
                    deal_id=self._spec.deal_id, milestone_key=m.key, session_id=session.session_id
                ),
            ),
            m,
        )
        if state is None or state.status == "open":
            return False
        m.session = None
        m.replace_at = m.reconcile_at = None
        if state.status == "expired":
            self._record(
                "workflow", "payment_link_expired", f"Payment link {session.session_id} expired", m
            )
        elif state.payment_intent_id not in (None, m.payment_intent_id):
            await self._confirm_session(state, "workflow", "closing the payment link", m)
        return True

    async def _fund_window_lapsed(self, m: MilestoneRun) -> None:
        self._request_stop(
            DealStage.EXPIRED,
            f"'{m.title}' was not funded within {_span(self._policy.fund_window)}",
            "timer",
        )

    # ------------------------------------------------------------------ confirming payments

    async def _confirm_session(
        self, state: CheckoutSessionState, source: Source, found_by: str, hint: MilestoneRun | None
    ) -> None:
        """Follow a Checkout Session to its payment intent; the intent decides (a manual-capture
        session stays 'unpaid' while its intent holds the money)."""
        if state.payment_intent_id is None:
            return
        milestone = self._find(state.metadata.get("milestone_key"), session_id=state.session_id)
        await self._confirm_intent(state.payment_intent_id, source, found_by, milestone or hint)

    async def _confirm_intent(
        self, intent_id: str, source: Source, found_by: str, hint: MilestoneRun | None
    ) -> None:
        intent = await self._attempt(
            "reading the payment", calls.stripe(Payments.retrieve_payment_intent, intent_id), hint
        )
        if intent is None:
            return
        if workflow.patched(STRIPE_HINTS_VERIFIED):
            problem = rules.payment_owner_problem(
                intent.metadata, self._spec.deal_id, self._milestones
            )
            if problem is not None:
                self._anomaly(f"Payment {intent_id} {problem}: nothing funded", hint)
                return
            m = self._milestones[intent.metadata["milestone_key"]]
        else:
            m = self._find(intent.metadata.get("milestone_key"), intent_id=intent_id) or hint
            if m is None:
                self._anomaly(f"Payment {intent_id} names no milestone of this deal; nothing funded")
                return
        await self._apply_payment(m, intent, source, found_by)

    async def _apply_payment(
        self, m: MilestoneRun, intent: PaymentIntentState, source: Source, found_by: str
    ) -> None:
        pi = intent.payment_intent_id
        if pi == m.payment_intent_id or pi in m.extra_intents:
            return  # counted already: a duplicate or reordered event
        kind, amount = _confirmed_money(intent)
        if kind is None:
            self._record(
                source,
                "payment_pending",
                f"Payment {pi} for '{m.title}' is not complete yet (Stripe: {intent.status})",
                m,
            )
            return
        if intent.currency.lower() != self._spec.currency or amount != m.spec.amount:
            m.extra_intents.append(pi)
            self._anomaly(
                f"Payment {pi} for '{m.title}' is {format_money(amount, intent.currency.lower())}, "
                f"the milestone is {self._money(m.spec.amount)}: nothing funded",
                m,
            )
            return
        if self._livemode is not None and intent.livemode != self._livemode:
            m.extra_intents.append(pi)
            self._anomaly(
                f"Payment {pi} mixes live and test money with this deal: nothing funded", m
            )
            return
        if m.state is S.AWAITING_FUNDING and self._stop is None:
            self._fund(m, intent, kind, amount, source, found_by)
        else:
            await self._refund_extra_payment(m, intent, kind, amount, source)

    def _fund(
        self,
        m: MilestoneRun,
        intent: PaymentIntentState,
        kind: PaymentKind,
        amount: int,
        source: Source,
        found_by: str,
    ) -> None:
        now = workflow.now()
        m.payment_intent_id = intent.payment_intent_id
        m.charge_id = intent.latest_charge
        m.livemode = intent.livemode
        m.sandbox = intent.sandbox
        m.funded = amount
        if self._livemode is None:
            self._livemode = intent.livemode
        if kind is PaymentKind.CHARGE:
            m.captured = amount
            held = "captured"
        else:
            m.capture_due_at = now + self._policy.capture_before_lapse
            held = "authorized on the card; captured on approval"
        self._set_state(
            m,
            S.FUNDED,
            source,
            "funded",
            f"'{m.title}' funded: {self._money(amount)} {held} (payment {m.payment_intent_id}, "
            f"confirmed by {found_by})",
        )
        self._ledger_payment(m, kind, intent.payment_intent_id, amount, intent.status)
        self._notify(EmailKind.PAYMENT_RECEIVED, "client", f"payment_received:{m.key}", m)
        self._hand_off(m)
        self._set_state(
            m,
            S.IN_PROGRESS,
            "workflow",
            "work_started",
            f"Work order for '{m.title}' sent to {self._spec.vendor.name}",
        )

    async def _refund_extra_payment(
        self,
        m: MilestoneRun,
        intent: PaymentIntentState,
        kind: PaymentKind,
        amount: int,
        source: Source,
    ) -> None:
        """Money arrived for a milestone that is not waiting for it (paid twice, or after the
        deal stopped): give it back and close any payment link still open."""
        pi = intent.payment_intent_id
        m.extra_intents.append(pi)
        self._record(
            source,
            "duplicate_payment",
            f"Second payment {pi} of {self._money(amount)} for '{m.title}': returning it",
            m,
        )
        self._ledger_payment(m, kind, pi, amount, intent.status)
        await self._close_checkout(m)
        await self._give_back(
            m,
            pi,
            captured=kind is PaymentKind.CHARGE,
            amount=amount,
            reason="duplicate",
            purpose=f"duplicate:{pi}",
            extra=True,
        )

    # ------------------------------------------------------------------ work and review

    def _hand_off(self, m: MilestoneRun, revision: int = 0, notes: str | None = None) -> None:
        """Tell the vendor to start work (or revision N): a mail, and a signed POST where they
        take one."""
        if revision == 0:
            self._notify(EmailKind.WORK_ORDER, "vendor", f"work_order:{m.key}", m)
        else:
            self._notify(
                EmailKind.REVISION_REQUESTED,
                "vendor",
                f"revision_requested:{m.key}:{revision}",
                m,
                notes=notes,
            )
        if self._spec.vendor.fulfillment_url is None:
            return
        order = WorkOrderInput(
            deal_id=self._spec.deal_id,
            milestone_key=m.key,
            fulfillment_url=str(self._spec.vendor.fulfillment_url),
            title=m.title,
            description=m.spec.description,
            amount=m.spec.amount,
            currency=self._spec.currency,
            due=m.due.isoformat() if m.due else None,
            sow_sha256=self._sow_sha256,
            revision=revision,
            notes=notes,
        )
        self._beside("sending the work order to the vendor", calls.DISPATCH_WORK_ORDER, order, m)

    async def _work_phase(self, m: MilestoneRun) -> None:
        await self._run_timers(
            lambda: m.state is S.IN_PROGRESS,
            lambda: [
                Timer(
                    m.next_overdue_at,
                    "tell the vendor the delivery is overdue",
                    lambda: self._overdue_notice(m),
                ),
                *self._money_timers(m),
            ],
        )

    async def _overdue_notice(self, m: MilestoneRun) -> None:
        m.overdue_notices += 1
        m.next_overdue_at = workflow.now() + self._policy.reminder_interval
        self._record(
            "timer",
            "delivery_overdue",
            f"'{m.title}' was due {m.due}: overdue notice {m.overdue_notices} sent to the vendor",
            m,
        )
        self._notify(
            EmailKind.DELIVERY_OVERDUE, "vendor", f"delivery_overdue:{m.key}:{m.overdue_notices}", m
        )

    async def _review_phase(self, m: MilestoneRun) -> None:
        await self._run_timers(
            lambda: m.state is S.DELIVERED,
            lambda: [
                Timer(
                    m.review_deadline,
                    "approve automatically: the review window ends",
                    lambda: self._auto_approve(m),
                ),
                Timer(
                    m.next_review_reminder_at,
                    "remind the client to review",
                    lambda: self._review_reminder(m),
                ),
                *self._money_timers(m),
            ],
        )

    async def _review_reminder(self, m: MilestoneRun) -> None:
        m.review_reminders += 1
        m.next_review_reminder_at = workflow.now() + self._policy.reminder_interval
        self._record(
            "timer", "review_reminder", f"Review reminder {m.review_reminders} for '{m.title}'", m
        )
        self._notify(
            EmailKind.REVIEW_REMINDER, "client", f"review_reminder:{m.key}:{m.review_reminders}", m
        )

    async def _auto_approve(self, m: MilestoneRun) -> None:
        self._set_state(
            m,
            S.APPROVED,
            "timer",
            "approved",
            f"No answer within the {_span(self._policy.review_window)} review window: "
            f"'{m.title}' approved automatically",
        )

    # ------------------------------------------------------------------ release

    async def _release_phase(self, m: MilestoneRun) -> None:
        async with self._stripe_turn():
            problem = await self._pay_vendor(m)
        if problem is not None:
            self._open_dispute(m, f"payout stopped: {problem}", "system")

    async def _pay_vendor(self, m: MilestoneRun) -> str | None:
        """Capture (if only authorized), then transfer or release; then the receipt and notices.
        Returns why the money could not move, or None when it did."""
        assert m.payment_intent_id
        if not m.captured:
            intent = await self._capture(m)
            if intent is None:
                return "the payment could not be captured"
        transfer_id = None
        if self._spec.vendor.stripe_account:
            transfer = await self._attempt(
                "transferring the payout",
                calls.stripe(
                    Payments.transfer_to_vendor,
                    TransferInput(
                        deal_id=self._spec.deal_id,
                        milestone_key=m.key,
                        destination_account=self._spec.vendor.stripe_account,
                        amount=m.held,
                        currency=self._spec.currency,
                    ),
                ),
                m,
            )
            if transfer is None:
                return "the transfer to the vendor's Stripe account failed"
            transfer_id = m.transfer_id = transfer.transfer_id
            self._ledger_payment(m, PaymentKind.TRANSFER, transfer_id, transfer.amount, "paid")
        else:
            self._ledger_payment(m, PaymentKind.RELEASE, m.payment_intent_id, m.held, "released")
        amount = m.held
        m.released += amount
        how = f"transfer {transfer_id}" if transfer_id else "payout outside Stripe Connect"
        self._set_state(
            m,
            S.RELEASED,
            "workflow",
            "released",
            f"{self._money(amount)} for '{m.title}' released to {self._spec.vendor.name} ({how})",
        )
        self._issue_receipt(m, amount)
        self._notify(
            EmailKind.PAYOUT_SENT, "vendor", f"payout_sent:{m.key}", m, transfer_id=transfer_id
        )
        artifacts = m.deliverables[-1].artifacts if m.deliverables else []
        if artifacts:
            delivery = ArtifactDeliveryInput(
                deal_id=self._spec.deal_id,
                milestone_key=m.key,
                client_email=str(self._spec.client.email),
                title=m.title,
                artifacts=artifacts,
                demo=self._policy.demo,
            )
            self._beside("delivering the approved files", calls.DELIVER_ARTIFACTS, delivery, m)
        return None

    async def _capture(self, m: MilestoneRun) -> PaymentIntentState | None:
        assert m.payment_intent_id
        intent = await self._attempt(
            "capturing the payment",
            calls.stripe(Payments.capture_payment, self._intent_action(m, m.payment_intent_id)),
            m,
        )
        if intent is not None:
            m.captured = intent.amount_received
            m.charge_id = intent.latest_charge or m.charge_id
            self._ledger_payment(
                m, PaymentKind.CHARGE, m.payment_intent_id, m.captured, intent.status
            )
        return intent

    async def _capture_before_lapse(self, m: MilestoneRun) -> None:
        m.capture_due_at = None
        async with self._stripe_turn():
            if m.captured or not m.held:
                return
            if await self._capture(m) is not None:
                self._record(
                    "timer",
                    "captured",
                    f"{self._money(m.captured)} for '{m.title}' captured before the card "
                    "authorization lapsed; it stays held until approval",
                    m,
                )

    def _issue_receipt(self, m: MilestoneRun, amount: int) -> None:
        """The receipt of a release, then its mail to the client with the PDF."""
        self._beside(
            "issuing the receipt",
            calls.ISSUE_RECEIPT,
            ReceiptInput(
                deal_id=self._spec.deal_id,
                milestone_key=m.key,
                milestone_title=m.title,
                deal_title=self._spec.title,
                client_name=self._spec.client.name,
                client_email=str(self._spec.client.email),
                vendor_name=self._spec.vendor.name,
                vendor_email=str(self._spec.vendor.email),
                amount=amount,
                currency=self._spec.currency,
                livemode=m.livemode,
                sandbox=m.sandbox,
                payment_intent_id=m.payment_intent_id,
                charge_id=m.charge_id,
                transfer_id=m.transfer_id,
                released_at=workflow.now(),
            ),
            m,
            then=lambda receipt: self._mail_receipt(m, amount, receipt),
        )

    async def _mail_receipt(self, m: MilestoneRun, amount: int, receipt: ReceiptResult) -> None:
        self._record(
            "workflow", "receipt", f"Receipt {receipt.receipt_number} issued for '{m.title}'", m
        )
        artifacts = m.deliverables[-1].artifacts if m.deliverables else []
        await self._send_mail(
            EmailKind.APPROVED_RECEIPT,
            "client",
            f"approved_receipt:{m.key}",
            m,
            attachments=[
                EmailAttachment(
                    filename=f"receipt-{receipt.receipt_number}.pdf",
                    content_type="application/pdf",
                    content_b64=receipt.pdf_b64,
                )
            ],
            receipt_number=receipt.receipt_number,
            released_display=self._money(amount),
            artifacts=[_artifact(a) for a in artifacts],
        )

    # ------------------------------------------------------------------ disputes

    def _open_dispute(self, m: MilestoneRun, reason: str, by: Source) -> None:
        m.paused_state = m.state
        m.dispute_reason = reason
        m.disputes += 1
        self._set_state(
            m,
            S.DISPUTED,
            by,
            "dispute_opened",
            f"Dispute opened by {by} on '{m.title}': {reason}. Its timers are paused.",
        )
        self._notify_both(
            EmailKind.DISPUTE_OPENED, f"dispute_opened:{m.key}:{m.disputes}", m, reason=reason
        )

    async def _dispute_phase(self, m: MilestoneRun) -> None:
        await self._run_timers(lambda: m.resolution is None, lambda: self._money_timers(m))
        if m.resolution is None or self._stop is not None:
            return
        resolution, m.resolution = m.resolution, None
        if resolution.resolution is DisputeResolution.REFUND and not await self._refund_disputed(
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
        self._set_state(
            m,
            target,
            _source(resolution.by),
            "dispute_resolved",
            f"Dispute on '{m.title}' resolved by {resolution.by} with "
            f"{resolution.resolution.value}{notes}",
        )
        self._notify_both(
            EmailKind.DISPUTE_RESOLVED,
            f"dispute_resolved:{m.key}:{m.disputes}",
            m,
            resolution=resolution.resolution.value,
            notes=resolution.notes,
        )

    # ------------------------------------------------------------------ giving money back

    async def _refund_disputed(self, m: MilestoneRun, resolution: PendingResolution) -> bool:
        """Give a disputed milestone's money back; a lost chargeback already did. False when the
        refund failed (the milestone stays disputed)."""
        if resolution.settled_by_stripe is not None:
            self._ledger_payment(
                m, PaymentKind.REFUND, resolution.settled_by_stripe, m.held, "lost"
            )
            m.count_returned(m.held, extra=False)
            return True
        async with self._stripe_turn():
            if await self._return_funding(m, purpose="dispute") is not None:
                return True
        self._anomaly(
            f"The refund that resolves the dispute on '{m.title}' failed; it stays disputed", m
        )
        return False

    async def _return_funding(self, m: MilestoneRun, purpose: str) -> int | None:
        """Return the milestone's held money to the client; the amount, or None on failure."""
        assert m.payment_intent_id
        return await self._give_back(
            m,
            m.payment_intent_id,
            captured=bool(m.captured),
            amount=m.held,
            reason="requested_by_customer",
            purpose=purpose,
            extra=False,
        )

    async def _give_back(
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
        if not captured:
            voided = await self._attempt(
                "cancelling the card authorization",
                calls.stripe(Payments.cancel_authorization, self._intent_action(m, intent_id)),
                m,
            )
            if voided is None:
                return None
            m.count_returned(amount, extra=extra)
            self._record(
                "workflow",
                "authorization_cancelled",
                f"Card hold of {self._money(amount)} for '{m.title}' released ({intent_id})",
                m,
            )
            return amount
        refund = await self._attempt(
            "refunding the payment",
            calls.stripe(
                Payments.refund_payment,
                RefundInput(
                    deal_id=self._spec.deal_id,
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
        self._count_refund(m, intent_id, refund.refund_id, refund.amount, refund.status)
        self._record(
            "workflow",
            "refunded",
            f"{self._money(refund.amount)} refunded to the client for '{m.title}' "
            f"({refund.refund_id}, {purpose})",
            m,
        )
        return refund.amount

    def _count_refund(
        self, m: MilestoneRun, intent_id: str, refund_id: str, amount: int, status: str
    ) -> None:
        self._refund_ids.add(refund_id)
        self._refunded_by_intent[intent_id] = self._refunded_by_intent.get(intent_id, 0) + amount
        self._ledger_payment(m, PaymentKind.REFUND, refund_id, amount, status)

    # ------------------------------------------------------------------ cancel and expiry

    def _request_stop(self, stage: DealStage, reason: str, source: Source) -> None:
        if self._stop is not None:
            return
        self._stop = StopRequest(stage, reason, source)
        verb = "Cancellation requested" if stage is DealStage.CANCELLED else "Deal expiring"
        self._record(source, f"{stage.value}_requested", f"{verb}: {reason}")

    async def _wind_down(self, stop: StopRequest) -> None:
        """Compensate (saga): close payment links, then return or pay out held money per policy."""
        async with self._stripe_turn():
            refunds = [await self._compensate(m) for m in self._milestones.values()]
        self._stage = stop.stage
        self._deadline = None
        self._record(stop.source, stop.stage.value, f"Deal {stop.stage.value}: {stop.reason}")
        if stop.stage is DealStage.CANCELLED:
            self._notify_both(
                EmailKind.DEAL_CANCELLED,
                "deal_cancelled",
                reason=stop.reason,
                refunds=[
                    {"milestone_title": m.title, "amount_display": self._money(amount)}
                    for m, amount in zip(self._milestones.values(), refunds, strict=True)
                    if amount
                ],
            )
        else:
            self._notify_both(EmailKind.DEAL_EXPIRED, "deal_expired", reason=stop.reason)

    async def _compensate(self, m: MilestoneRun) -> int:
        """Undo what one milestone holds; returns the amount given back to the client."""
        await self._close_checkout(m)
        returned = 0
        if m.held and m.state is not S.RELEASED:
            if self._vendor_keeps(m):
                problem = await self._pay_vendor(m)
                if problem is not None:
                    self._anomaly(f"Cancelling: {problem} for '{m.title}'; its money stays held", m)
            else:
                returned = await self._return_funding(m, purpose="cancel") or 0
        if m.state not in (S.RELEASED, S.REFUNDED):
            m.enter(S.CANCELLED, workflow.now(), self._policy)
        return returned

    def _vendor_keeps(self, m: MilestoneRun) -> bool:
        """Approved work is paid for on cancellation; delivered work too, unless the policy
        refunds all unreleased money."""
        if m.work_state is S.APPROVED:
            return True
        return (
            m.work_state is S.DELIVERED and self._policy.cancel_refund is CancelRefund.UNDELIVERED
        )

    # ------------------------------------------------------------------ human actions

    def _act(self, action_input: Any) -> ActionResult:
        """The one path of every human action, signal or update."""
        action = self._actions[type(action_input)]
        source = action.source(action_input)
        reason = self._refusal(action, action_input)
        if reason is not None:
            self._record(source, "rejected", f"{action.name} rejected: {reason}")
            message = reason
        else:
            message = action.apply(action_input)
        self._journal.flush()
        return ActionResult(stage=self._stage, message=message)

    def _validate(self, action_input: Any) -> None:
        action = self._actions[type(action_input)]
        reason = self._refusal(action, action_input)
        if reason is not None:
            raise ApplicationError(reason, type="ActionRejected", non_retryable=True)

    def _refusal(self, action: Action, action_input: Any) -> str | None:
        if self._stage in (DealStage.COMPLETED, DealStage.CANCELLED, DealStage.EXPIRED):
            return f"the deal is {self._stage.value}"
        if self._stop is not None:
            return f"the deal is stopping ({self._stop.stage.value}): {self._stop.reason}"
        if self._text_checked and (problem := first_text_problem(action_input)):
            return str(problem)
        return action.refusal(action_input)

    def _milestone_refusal(
        self, key: str, allowed: frozenset[MilestoneState], doing: str
    ) -> str | None:
        m = self._milestones.get(key)
        if m is None:
            return f"milestone_key: unknown milestone '{key}' (this deal has {', '.join(self._milestones)})"
        if m.state not in allowed:
            wanted = " or ".join(sorted(s.value for s in allowed))
            return f"'{m.title}' is {m.state.value}; {doing} needs it {wanted}"
        return None

    def _refuse_sign(self, sign: SignSow) -> str | None:
        if self._stage is not DealStage.SOW_SENT:
            return f"the statement of work is already signed (the deal is {self._stage.value})"
        if not sign.consent:
            return "consent: the signer must consent to sign electronically"
        if sign.sow_sha256 is not None and sign.sow_sha256 != self._sow_sha256:
            return (
                "sow_sha256: the statement of work you saw is not the one on file "
                f"(hash mismatch: expected {self._sow_sha256})"
            )
        return None

    def _sign(self, sign: SignSow) -> str:
        now = workflow.now()
        self._signature = Signature(
            signer_name=sign.signer_name,
            signed_at=now,
            sow_sha256=self._sow_sha256,
            ip=sign.ip,
            user_agent=sign.user_agent,
        )
        for m in self._milestones.values():
            m.set_due(now.date())
        self._stage = DealStage.SIGNED
        self._record(
            "client",
            "signed",
            f"Statement of work signed by {sign.signer_name} (consent given; IP {sign.ip or 'unknown'})",
        )
        return "Signed: thank you. The first payment link is on its way."

    def _refuse_submit(self, submit: SubmitDeliverable) -> str | None:
        return self._milestone_refusal(
            submit.milestone_key, frozenset({S.IN_PROGRESS, S.REVISION_REQUESTED}), "a deliverable"
        )

    def _submit(self, submit: SubmitDeliverable) -> str:
        m = self._milestones[submit.milestone_key]
        m.deliverables.append(
            Deliverable(
                summary=submit.summary,
                artifacts=submit.artifacts,
                submitted_at=workflow.now(),
                revision=m.revisions,
            )
        )
        self._set_state(
            m,
            S.DELIVERED,
            "vendor",
            "delivered",
            f"Deliverable for '{m.title}' submitted ({len(submit.artifacts)} files): {submit.summary}",
        )
        assert m.review_deadline
        self._notify(
            EmailKind.DELIVERABLE_READY,
            "client",
            f"deliverable_ready:{m.key}:{m.revisions}",
            m,
            summary=submit.summary,
            artifacts=[_artifact(a) for a in submit.artifacts],
            review_deadline=m.review_deadline.isoformat(),
        )
        return f"Delivered: the client has until {m.review_deadline.isoformat()} to review"

    def _refuse_approve(self, approve: ApproveMilestone) -> str | None:
        return self._milestone_refusal(approve.milestone_key, frozenset({S.DELIVERED}), "approval")

    def _approve(self, approve: ApproveMilestone) -> str:
        m = self._milestones[approve.milestone_key]
        self._set_state(
            m,
            S.APPROVED,
            "client",
            "approved",
            f"'{m.title}' approved by {approve.approved_by or 'the client'}",
        )
        return "Approved: the payment is being released to the vendor"

    def _refuse_revision(self, revise: RequestRevision) -> str | None:
        refusal = self._milestone_refusal(
            revise.milestone_key, frozenset({S.DELIVERED}), "a revision request"
        )
        if refusal is not None:
            return refusal
        m = self._milestones[revise.milestone_key]
        if m.revisions >= self._policy.max_revisions:
            return (
                f"revision limit reached: '{m.title}' had {m.revisions} of "
                f"{self._policy.max_revisions} revisions (policy.max_revisions); approve or dispute"
            )
        return None

    def _revise(self, revise: RequestRevision) -> str:
        m = self._milestones[revise.milestone_key]
        m.revisions += 1
        self._set_state(
            m,
            S.REVISION_REQUESTED,
            "client",
            "revision_requested",
            f"Revision {m.revisions} of {self._policy.max_revisions} requested for "
            f"'{m.title}': {revise.notes}",
        )
        self._hand_off(m, m.revisions, revise.notes)
        self._set_state(
            m, S.IN_PROGRESS, "workflow", "work_resumed", f"The vendor is revising '{m.title}'"
        )
        return f"Revision {m.revisions} of {self._policy.max_revisions} requested"

    def _refuse_dispute(self, dispute: OpenDispute) -> str | None:
        return self._milestone_refusal(dispute.milestone_key, DISPUTABLE, "a dispute")

    def _dispute(self, dispute: OpenDispute) -> str:
        m = self._milestones[dispute.milestone_key]
        self._open_dispute(m, dispute.reason, dispute.opened_by)
        return f"Dispute opened on '{m.title}': it is paused until an operator resolves it"

    def _refuse_resolve(self, resolve: ResolveDispute) -> str | None:
        refusal = self._milestone_refusal(
            resolve.milestone_key, frozenset({S.DISPUTED}), "a resolution"
        )
        if refusal is None and self._milestones[resolve.milestone_key].resolution is not None:
            return "a resolution of this dispute is already being carried out"
        return refusal

    def _resolve_later(self, resolve: ResolveDispute) -> str:
        m = self._milestones[resolve.milestone_key]
        m.resolution = PendingResolution(resolve.resolution, resolve.notes, by="operator")
        return f"Resolution '{resolve.resolution.value}' accepted for '{m.title}'"

    def _cancel(self, cancel: CancelDeal) -> str:
        self._request_stop(DealStage.CANCELLED, cancel.reason, _requester(cancel))
        return "Cancellation started: open payments are being returned"

    # signal + update pairs (the same name; both run `_act`)

    @workflow.signal(name="sign_sow")
    def sign_sow_signal(self, sign: SignSow) -> None:
        self._act(sign)

    @workflow.update
    def sign_sow(self, sign: SignSow) -> ActionResult:
        return self._act(sign)

    @sign_sow.validator
    def _validate_sign_sow(self, sign: SignSow) -> None:
        self._validate(sign)

    @workflow.signal(name="submit_deliverable")
    def submit_deliverable_signal(self, submit: SubmitDeliverable) -> None:
        self._act(submit)

    @workflow.update
    def submit_deliverable(self, submit: SubmitDeliverable) -> ActionResult:
        return self._act(submit)

    @submit_deliverable.validator
    def _validate_submit_deliverable(self, submit: SubmitDeliverable) -> None:
        self._validate(submit)

    @workflow.signal(name="approve_milestone")
    def approve_milestone_signal(self, approve: ApproveMilestone) -> None:
        self._act(approve)

    @workflow.update
    def approve_milestone(self, approve: ApproveMilestone) -> ActionResult:
        return self._act(approve)

    @approve_milestone.validator
    def _validate_approve_milestone(self, approve: ApproveMilestone) -> None:
        self._validate(approve)

    @workflow.signal(name="request_revision")
    def request_revision_signal(self, revise: RequestRevision) -> None:
        self._act(revise)

    @workflow.update
    def request_revision(self, revise: RequestRevision) -> ActionResult:
        return self._act(revise)

    @request_revision.validator
    def _validate_request_revision(self, revise: RequestRevision) -> None:
        self._validate(revise)

    @workflow.signal(name="open_dispute")
    def open_dispute_signal(self, dispute: OpenDispute) -> None:
        self._act(dispute)

    @workflow.update
    def open_dispute(self, dispute: OpenDispute) -> ActionResult:
        return self._act(dispute)

    @open_dispute.validator
    def _validate_open_dispute(self, dispute: OpenDispute) -> None:
        self._validate(dispute)

    @workflow.signal(name="resolve_dispute")
    def resolve_dispute_signal(self, resolve: ResolveDispute) -> None:
        self._act(resolve)

    @workflow.update
    def resolve_dispute(self, resolve: ResolveDispute) -> ActionResult:
        return self._act(resolve)

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, resolve: ResolveDispute) -> None:
        self._validate(resolve)

    @workflow.signal(name="cancel_deal")
    def cancel_deal_signal(self, cancel: CancelDeal) -> None:
        self._act(cancel)

    @workflow.update
    async def cancel_deal(self, cancel: CancelDeal) -> ActionResult:
        """Answers once the compensations ran, with the deal's final stage."""
        self._act(cancel)
        await workflow.wait_condition(
            lambda: self._stage in (DealStage.CANCELLED, DealStage.EXPIRED, DealStage.COMPLETED)
        )
        refunded = sum(m.returned for m in self._milestones.values())
        return ActionResult(
            stage=self._stage,
            message=f"Deal {self._stage.value}; {self._money(refunded)} returned to the client",
        )

    @cancel_deal.validator
    def _validate_cancel_deal(self, cancel: CancelDeal) -> None:
        self._validate(cancel)

    # ------------------------------------------------------------------ Stripe events

    @workflow.signal
    async def stripe_event(self, event: StripeEventSignal) -> None:
        """A verified webhook, as a hint: deduplicated by event id, then checked against Stripe."""
        try:
            await self._take_stripe_event(event)
        finally:
            self._journal.flush()

    async def _take_stripe_event(self, event: StripeEventSignal) -> None:
        if event.event_id in self._seen_events:
            self._record(
                "stripe", "duplicate_event", f"Duplicate Stripe event {event.event_id} ignored"
            )
            return
        self._seen_events.add(event.event_id)
        self._record(
            "stripe",
            "stripe_event",
            f"Stripe event {event.type} ({event.event_id})",
            self._find(event.milestone_key),
        )
        if self._livemode is not None and event.livemode != self._livemode:
            self._anomaly(
                f"Stripe event {event.event_id} is {'live' if event.livemode else 'test'} "
                "money, unlike this deal: ignored"
            )
            return
        async with self._stripe_turn():
            await self._on_stripe_event(event)

    async def _on_stripe_event(self, event: StripeEventSignal) -> None:
        m = self._find(
            event.milestone_key,
            session_id=event.checkout_session_id,
            intent_id=event.payment_intent_id,
        )
        if event.type in PAYMENT_EVENTS:
            if event.type.startswith("checkout.session."):
                session_id = event.checkout_session_id or event.object_id
                state = await self._attempt(
                    "reading the Checkout Session",
                    calls.stripe(Payments.retrieve_checkout_session, session_id),
                    m,
                )
                if state is not None:
                    await self._confirm_session(state, "stripe", "Stripe webhook", m)
            else:
                await self._confirm_intent(
                    event.payment_intent_id or event.object_id, "stripe", "Stripe webhook", m
                )
            return
        verified = self._verified_events.get(event.type)
        if verified is not None and workflow.patched(STRIPE_HINTS_VERIFIED):
            await verified(event)
            return
        handler = self._milestone_events.get(event.type)
        if m is None or handler is None:
            about = "nothing to do" if m else "it concerns no milestone of this deal"
            self._record("stripe", "stripe_event_ignored", f"Stripe event {event.type}: {about}", m)
        else:
            handler(m, event)

    async def _verified_dispute(self, event: StripeEventSignal) -> None:
        dispute = await self._attempt(
            "reading the Stripe dispute", calls.stripe(Payments.retrieve_dispute, event.object_id)
        )
        if dispute is None:
            return
        m = self._milestone_of_payment(
            f"Stripe dispute {dispute.dispute_id}", dispute.payment_intent_id, dispute.currency
        )
        if m is None:
            return
        if event.type == "charge.dispute.created":
            self._chargeback_opened(m, dispute.dispute_id)
        else:
            self._chargeback_closed(m, dispute.dispute_id, dispute.status)

    async def _verified_refund(self, event: StripeEventSignal) -> None:
        refund = await self._attempt(
            "reading the refund", calls.stripe(Payments.retrieve_refund, event.object_id)
        )
        if refund is None:
            return
        m = self._milestone_of_payment(f"Refund {refund.refund_id}", refund.payment_intent_id, refund.currency)
        if m is not None:
            self._refund_seen(m, refund.refund_id)

    async def _verified_charge_refund(self, event: StripeEventSignal) -> None:
        charge = await self._attempt(
            "reading the refunded charge", calls.stripe(Payments.retrieve_charge, event.object_id)
        )
        if charge is None:
            return
        m = self._milestone_of_payment(f"Charge {charge.charge_id}", charge.payment_intent_id, charge.currency)
        if m is None:
            return
        collected = m.funded if charge.payment_intent_id == m.payment_intent_id else charge.amount
        if charge.amount_refunded > collected:
            self._anomaly(
                f"Stripe reports {self._money(charge.amount_refunded)} refunded on charge "
                f"{charge.charge_id}, more than the {self._money(collected)} collected",
                m,
            )
        self._charge_refunded(m, charge.charge_id, charge.payment_intent_id, charge.amount_refunded)

    def _milestone_of_payment(self, what: str, intent_id: str | None, currency: str) -> MilestoneRun | None:
        """The milestone whose payment a re-read Stripe object concerns; an anomaly if none."""
        m = self._find(None, intent_id=intent_id) if intent_id else None
        if m is None:
            self._anomaly(f"{what} concerns payment {intent_id}, which is not this deal's: ignored")
        elif currency.lower() != self._spec.currency:
            self._anomaly(f"{what} is in {currency.upper()}, unlike this deal: ignored", m)
            return None
        return m

    def _payment_failed(self, m: MilestoneRun) -> None:
        self._record(
            "stripe",
            "payment_failed",
            f"A payment attempt for '{m.title}' failed; the payment link stays open",
            m,
        )

    def _chargeback_opened(self, m: MilestoneRun, dispute_id: str) -> None:
        reason = f"the client disputed the charge with their bank (Stripe dispute {dispute_id})"
        if m.state in DISPUTABLE:
            self._open_dispute(m, reason, "stripe")
        elif m.state is S.DISPUTED:
            self._record(
                "stripe", "chargeback", f"'{m.title}' is already disputed; also {reason}", m
            )
        else:
            self._anomaly(
                f"Chargeback on '{m.title}' ({m.state.value}): {reason}; "
                "answer it in the Stripe dashboard",
                m,
            )

    def _chargeback_closed(self, m: MilestoneRun, dispute_id: str, status: str | None) -> None:
        outcome = {
            "won": (DisputeResolution.RESUME, "Stripe dispute won: the money stays"),
            "lost": (DisputeResolution.REFUND, "Stripe dispute lost: the bank returned the money"),
        }.get(status or "")
        if m.state is not S.DISPUTED or m.resolution is not None or outcome is None:
            self._anomaly(
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

    def _refund_seen(self, m: MilestoneRun, refund_id: str) -> None:
        if refund_id in self._refund_ids:
            self._record("stripe", "refund_confirmed", f"Stripe confirmed refund {refund_id}", m)
        else:
            self._record(
                "stripe",
                "refund_outside",
                f"Refund {refund_id} was made outside dealflow; it is counted when "
                "Stripe reports the charge refunded",
                m,
            )

    def _charge_refunded(
        self, m: MilestoneRun, charge_id: str, intent_id: str | None, total: int | None
    ) -> None:
        """`total` is the charge's refunded total: anything beyond what we know was refunded
        elsewhere (the dashboard) and is counted once, keyed by that total."""
        known = self._refunded_by_intent.get(intent_id or "", 0)
        if intent_id is None or total is None or total <= known:
            return
        extra = total - known
        self._count_refund(m, intent_id, f"{charge_id}:refunded:{total}", extra, "succeeded")
        own = min(extra, m.held) if intent_id == m.payment_intent_id else 0
        m.count_returned(own, extra=False)
        m.count_returned(extra - own, extra=True)
        if intent_id == m.payment_intent_id:
            self._anomaly(
                f"{self._money(extra)} of '{m.title}' was refunded outside dealflow "
                f"while it is {m.state.value}",
                m,
            )
        self._record(
            "stripe",
            "refunded",
            f"{self._money(extra)} refunded outside dealflow on charge {charge_id}",
            m,
        )

    def _find(
        self, key: str | None, *, session_id: str | None = None, intent_id: str | None = None
    ) -> MilestoneRun | None:
        if key in self._milestones:
            return self._milestones[key]
        for m in self._milestones.values():
            if (session_id and session_id in m.session_ids) or (
                intent_id and intent_id in (m.payment_intent_id, *m.extra_intents)
            ):
                return m
        return None

    # ------------------------------------------------------------------ status

    @workflow.query
    def status(self) -> DealStatus:
        return DealStatus(
            deal_id=self._spec.deal_id,
            title=self._spec.title,
            currency=self._spec.currency,
            stage=self._stage,
            client_email=str(self._spec.client.email),
            vendor_email=str(self._spec.vendor.email),
            sow_sha256=self._sow_sha256,
            livemode=self._livemode,
            signature=self._signature,
            milestones=[m.status() for m in self._milestones.values()],
            money=self._money_totals(),
            timeline=list(self._journal.timeline),
            anomalies=list(self._journal.anomalies),
            next_deadline=self._deadline,
            demo=self._policy.demo,
        )

    def _money_totals(self) -> MoneyTotals:
        runs = self._milestones.values()
        return MoneyTotals(
            contract=self._spec.total_amount,
            funded=sum(m.held for m in runs),
            released=sum(m.released for m in runs),
            refunded=sum(m.refunded for m in runs),
            disputed=sum(m.held for m in runs if m.state is S.DISPUTED),
        )

    # ------------------------------------------------------------------ recording

    def _set_state(
        self, m: MilestoneRun, state: MilestoneState, source: Source, kind: str, message: str
    ) -> None:
        """Move the active milestone; the deal's stage follows it (a refunded milestone leaves
        the stage to the next milestone)."""
        m.enter(state, workflow.now(), self._policy)
        self._stage = STAGE_OF.get(state, self._stage)
        self._record(source, kind, message, m)

    def _record(
        self, source: Source, kind: str, message: str, m: MilestoneRun | None = None
    ) -> None:
        self._journal.record(source, kind, message, m.key if m else None)

    def _anomaly(self, message: str, m: MilestoneRun | None = None) -> None:
        self._journal.anomaly(message, m.key if m else None)

    def _view(self) -> View:
        return View(stage=self._stage, money=self._money_totals(), livemode=self._livemode)

    def _ledger_payment(
        self, m: MilestoneRun, kind: PaymentKind, stripe_id: str, amount: int, status: str
    ) -> None:
        self._journal.payment(
            PaymentRecord(
                stripe_id=stripe_id,
                deal_id=self._spec.deal_id,
                milestone_key=m.key,
                kind=kind,
                amount=amount,
                currency=self._spec.currency,
                livemode=m.livemode,
                sandbox=m.sandbox,
                status=status,
                occurred_at=workflow.now(),
            )
        )

    # ------------------------------------------------------------------ activities and notices

    async def _attempt(
        self, what: str, call: Awaitable[T], m: MilestoneRun | None = None
    ) -> T | None:
        """Await an activity; a permanent failure becomes an anomaly and None, and the deal goes on."""
        self._journal.flush()
        try:
            return await call
        except ActivityError as error:
            self._anomaly(f"{what.capitalize()} failed: {failure(error)}", m)
            return None

    def _beside(
        self,
        what: str,
        call: calls.Call[A, T],
        arg: A,
        m: MilestoneRun | None,
        then: Callable[[T], Awaitable[None]] | None = None,
    ) -> None:
        """Run an activity beside the deal (a notice, a hand-off, a receipt), and `then` on its
        result; `run` waits for all before it returns. With OWN_STEPS the activity starts now,
        in the asking step; before, when its task first ran."""
        started = call.start(arg) if self._own_steps else None

        async def carry_out() -> None:
            result = await self._attempt(what, started or call.run(arg), m)
            if result is not None and then is not None:
                await then(result)

        self._background.append(asyncio.create_task(self._flushed(carry_out())))

    async def _flushed(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """A background step's last records go to the ledger when it ends."""
        try:
            await coroutine
        finally:
            self._journal.flush()

    @asynccontextmanager
    async def _stripe_turn(self) -> AsyncIterator[None]:
        """One Stripe conversation at a time; what this step recorded is written before it
        waits for its turn."""
        self._journal.flush()
        async with self._stripe_lock:
            yield

    def _notify(
        self,
        kind: EmailKind,
        party: Party,
        message_key: str,
        m: MilestoneRun | None = None,
        **context: Any,
    ) -> None:
        email = self._email(kind, party, message_key, m, **context)
        self._beside(f"the {kind.value} mail to {email.to}", calls.SEND_EMAIL, email, m)

    def _notify_both(
        self, kind: EmailKind, message_key: str, m: MilestoneRun | None = None, **context: Any
    ) -> None:
        for party in ("client", "vendor"):
            self._notify(kind, party, f"{message_key}:{party}", m, **context)

    async def _send_mail(
        self,
        kind: EmailKind,
        party: Party,
        message_key: str,
        m: MilestoneRun | None,
        attachments: list[EmailAttachment] | None = None,
        **context: Any,
    ) -> None:
        email = self._email(kind, party, message_key, m, attachments, **context)
        await self._attempt(f"the {kind.value} mail to {email.to}", calls.SEND_EMAIL.run(email), m)

    def _email(
        self,
        kind: EmailKind,
        party: Party,
        message_key: str,
        m: MilestoneRun | None,
        attachments: list[EmailAttachment] | None = None,
        **context: Any,
    ) -> EmailInput:
        to = str(self._spec.client.email if party == "client" else self._spec.vendor.email)
        return build_email(
            self._spec,
            kind,
            to=to,
            message_key=message_key,
            milestone=m.spec if m else None,
            attachments=attachments or (),
            **context,
        )

    def _intent_action(self, m: MilestoneRun, intent_id: str) -> PaymentIntentAction:
        return PaymentIntentAction(
            deal_id=self._spec.deal_id, milestone_key=m.key, payment_intent_id=intent_id
        )

    def _money(self, amount: int) -> str:
        return format_money(amount, self._spec.currency)


def _confirmed_money(intent: PaymentIntentState) -> tuple[PaymentKind | None, int]:
    """What Stripe says the client's payment is: captured, authorized (manual capture), or
    nothing yet."""
    if intent.status == "succeeded":
        return PaymentKind.CHARGE, intent.amount_received
    if intent.status == "requires_capture":
        return PaymentKind.AUTHORIZATION, intent.amount_capturable
    return None, 0


def _artifact(artifact: Any) -> dict[str, str]:
    return {"name": artifact.name, "url": str(artifact.url), "sha256": artifact.sha256}


def _requester(cancel: CancelDeal) -> Source:
    return _source(cancel.requested_by)


def _source(who: str) -> Source:
    """A timeline source for a free-text actor ("operator" unless it names a known source)."""
    return next((source for source in get_args(Source) if source == who), "operator")


def _span(duration: timedelta) -> str:
    """A duration for people: '14 days', '36 hours', '30 minutes'."""
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
