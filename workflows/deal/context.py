"""DealContext: what every room of the deal shares, passed in rather than inherited.

The deal's spec and policy, its stage, milestones and stop request, the journal that records
them, the one Stripe conversation at a time, the patch decisions taken when the deal was built,
and the helpers that record, notify and call activities. Each phase keeps its own state in its
own object and reaches the rest of the deal only through this.

Work started beside the deal (mails, hand-offs, receipts) is a task of its own (`beside`); `run`
waits for all of them. Everything else runs in the coroutine that asks for it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from dealflow.console import current_details
    from dealflow.contract import EventKind
    from dealflow.messages import (
        OPERATOR_MAILBOX,
        UNNAMED_OPERATOR,
        DealStage,
        EmailAttachment,
        EmailInput,
        EmailKind,
        MilestoneState,
        MoneyTotals,
        OperatorAction,
        PaymentIntentAction,
        PaymentIntentState,
        PaymentKind,
        PaymentRecord,
    )
    from dealflow.models import DealSpec
    from dealflow.money import format_money
    from workflows import calls
    from workflows.deal.patches import (
        DEAL_TERMS,
        DISPUTES_AND_DEBITS,
        LEAN_STEPS,
        OWN_STEPS,
        PAYMENTS_READ_IN_TASK,
        PAYMENTS_READ_RECORDED,
        REFUSE_BAD_TEXT,
        STRIPE_HINTS_VERIFIED,
    )
    from workflows.deal.timers import Timers
    from workflows.journal import LEDGER_PER_STEP, Journal, Source, View, failure
    from workflows.mail import build_email
    from workflows.milestone import MilestoneRun
    from workflows.rules import StopRequest

S = MilestoneState
#: The deal's stage while a milestone is in a state; refunded and cancelled have none.
STAGE_OF = {s: DealStage(s.value) for s in S if s.value in DealStage._value2member_map_}
Party = Literal["client", "vendor"]
T = TypeVar("T")
A = TypeVar("A")


class DealContext:
    def __init__(self, spec: DealSpec) -> None:
        self.spec = spec
        self.policy = spec.policy
        self.sow_sha256 = hashlib.sha256(spec.sow.encode()).hexdigest()
        self.stage = DealStage.SOW_SENT
        self.milestones = {m.key: MilestoneRun(spec=m) for m in spec.milestones}
        self.livemode: bool | None = None
        self.stop: StopRequest | None = None
        #: The operator whose action is being applied (`Actions.act`): what it records names them.
        self.acting_operator: str | None = None
        #: Whose signature the SOW waits for, for the deal's page (`Signing` asks each in turn).
        self.awaited_signer = "client"
        self.stripe_lock = asyncio.Lock()
        # Decided here, when the deal is built: an update can come in the deal's first
        # activation, and the SDK runs its handler before `run` starts. Deals recorded before
        # LEAN_STEPS ask for the older patches one by one, in the order they always did.
        read_recorded = workflow.patched(PAYMENTS_READ_RECORDED)
        self.payments_read_in_task = not read_recorded and workflow.patched(PAYMENTS_READ_IN_TASK)
        self.deal_terms = (
            read_recorded or self.payments_read_in_task or workflow.patched(DEAL_TERMS)
        )
        self.disputes_and_debits = self.deal_terms or workflow.patched(DISPUTES_AND_DEBITS)
        self.lean = self.disputes_and_debits or workflow.patched(LEAN_STEPS)
        per_step = self.lean or workflow.patched(LEDGER_PER_STEP)
        self.journal = Journal(
            spec,
            self._view,
            per_step=per_step,
            publish_on_flush=self.lean,
            stage_since=self.disputes_and_debits,
        )
        self.timers = Timers(stopped=lambda: self.stop is not None, before_waiting=self.before_waiting)
        self.background: list[asyncio.Task[None]] = []
        self.text_checked = self.lean or workflow.patched(REFUSE_BAD_TEXT)
        self.own_steps = self.lean or workflow.patched(OWN_STEPS)
        if self.own_steps:
            self.journal.by_owner(asyncio.current_task)

    def stripe_hints_verified(self) -> bool:
        """Whether Stripe's copy decides (STRIPE_HINTS_VERIFIED); older deals ask where they use it."""
        return self.lean or workflow.patched(STRIPE_HINTS_VERIFIED)

    # ------------------------------------------------------------------ the deal's state

    def amend(self, spec: DealSpec, sow_sha256: str) -> None:
        """New terms in force (an accepted amendment): the spec, the hash the deal stands on,
        and what the journal publishes (the contract's amount)."""
        self.spec = spec
        self.sow_sha256 = sow_sha256
        self.journal.amend(spec)

    def request_stop(self, stage: DealStage, reason: str, source: Source) -> None:
        """Ask the deal to stop (the first request wins); `run` winds it down."""
        if self.stop is not None:
            return
        self.stop = StopRequest(stage, reason, source, self.acting_operator)
        verb = "Cancellation requested" if stage is DealStage.CANCELLED else "Deal expiring"
        self.record(source, EventKind(f"{stage.value}_requested"), f"{verb}: {reason}")

    def set_state(
        self,
        m: MilestoneRun,
        state: MilestoneState,
        source: Source,
        kind: EventKind,
        message: str,
        operator: str | None = None,
    ) -> None:
        """Move the active milestone; the deal's stage follows it (a refunded milestone leaves
        the stage to the next milestone)."""
        m.enter(state, workflow.now(), self.policy)
        self.stage = STAGE_OF.get(state, self.stage)
        self.record(source, kind, message, m, operator=operator)

    def find(
        self, key: str | None, *, session_id: str | None = None, intent_id: str | None = None
    ) -> MilestoneRun | None:
        """The milestone a key names, or whose Checkout Session or payment this is."""
        if key in self.milestones:
            return self.milestones[key]
        for m in self.milestones.values():
            if (session_id and session_id in m.session_ids) or (
                intent_id and intent_id in (m.payment_intent_id, *m.extra_intents)
            ):
                return m
        return None

    def counted(self, intent_id: str) -> bool:
        """Whether a payment was taken into account already: it funded a milestone, or it was
        refused or given back."""
        return any(
            intent_id in (m.payment_intent_id, *m.extra_intents) for m in self.milestones.values()
        )

    def money_totals(self) -> MoneyTotals:
        runs = self.milestones.values()
        return MoneyTotals(
            contract=self.spec.total_amount,
            funded=sum(m.held for m in runs),
            released=sum(m.released for m in runs),
            platform_fees=sum(m.platform_fee for m in runs),
            refunded=sum(m.refunded for m in runs),
            disputed=sum(m.held for m in runs if m.state is S.DISPUTED),
            withdrawn=sum(m.withdrawn for m in runs),
            late_fees=sum(m.late_fee for m in runs),
        )

    def money(self, amount: int) -> str:
        return format_money(amount, self.spec.currency)

    def before_waiting(self) -> None:
        """The deal is about to wait for time or a person: its step's ledger rows go out, and
        its page in the Temporal UI says where it stands."""
        self.journal.flush()
        workflow.set_current_details(
            current_details(
                self.stage,
                self.timers.deadline,
                self.money_totals(),
                self.spec.currency,
                self.awaited_signer,
            )
        )

    def _view(self) -> View:
        return View(stage=self.stage, money=self.money_totals(), livemode=self.livemode)

    # ------------------------------------------------------------------ recording

    def record(
        self,
        source: Source,
        kind: EventKind,
        message: str,
        m: MilestoneRun | None = None,
        detail: dict[str, Any] | None = None,
        operator: str | None = None,
    ) -> None:
        """One timeline entry; it names `operator`, or else the operator acting now, if any."""
        self.journal.record(
            source, kind, message, m.key if m else None, detail, operator or self.acting_operator
        )

    def operator_of(self, action: OperatorAction, source: Source) -> str | None:
        """Who took an action, for the timeline: the operator it names, or UNNAMED_OPERATOR for
        an operator's action that names none; None for deals before DEAL_TERMS."""
        if not self.deal_terms:
            return None
        return action.operator or (UNNAMED_OPERATOR if source == "operator" else None)

    def anomaly(self, message: str, m: MilestoneRun | None = None) -> None:
        self.journal.anomaly(message, m.key if m else None)

    def ledger_payment(
        self,
        m: MilestoneRun,
        kind: PaymentKind,
        stripe_id: str,
        amount: int,
        status: str,
        charged: PaymentIntentState | None = None,
    ) -> None:
        """One ledger payment; a charge's row keeps the fee and net its payment intent was read
        with (`charged`)."""
        fees = (
            {"fee": charged.fee, "net": charged.net, "fee_currency": charged.fee_currency}
            if charged is not None and kind is PaymentKind.CHARGE
            else {}
        )
        self.journal.payment(
            PaymentRecord(
                stripe_id=stripe_id,
                deal_id=self.spec.deal_id,
                milestone_key=m.key,
                kind=kind,
                amount=amount,
                currency=self.spec.currency,
                livemode=m.livemode,
                sandbox=m.sandbox,
                status=status,
                occurred_at=workflow.now(),
                **fees,
            )
        )

    # ------------------------------------------------------------------ activities

    async def attempt(
        self, what: str, call: Awaitable[T], m: MilestoneRun | None = None
    ) -> T | None:
        """Await an activity; a permanent failure becomes an anomaly and None, and the deal goes on.
        Deals before LEAN_STEPS hand what the step recorded to the ledger first."""
        if not self.lean:
            self.journal.flush()
        try:
            return await call
        except ActivityError as error:
            self.anomaly(f"{what.capitalize()} failed: {failure(error)}", m)
            return None

    def beside(
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
        started = call.start(arg) if self.own_steps else None

        async def carry_out() -> None:
            result = await self.attempt(what, started or call.run(arg), m)
            if result is not None and then is not None:
                await then(result)

        self.background.append(asyncio.create_task(self.flushed(carry_out())))

    async def beside_done(self) -> None:
        """Wait until every task beside the deal is done, and those they start meanwhile."""
        while pending := [task for task in self.background if not task.done()]:
            await asyncio.gather(*pending)

    async def flushed(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """A background step's last records go to the ledger when it ends; not when the garbage
        collector closes it (a deal the worker let go while the step waited), which happens
        outside any workflow, where nothing can be issued."""
        closed = False
        try:
            await coroutine
        except GeneratorExit:
            closed = True
            raise
        finally:
            if not closed:
                self.journal.flush()

    @asynccontextmanager
    async def stripe_turn(self) -> AsyncIterator[None]:
        """One Stripe conversation at a time (deals before LEAN_STEPS write what the step
        recorded before they wait for their turn)."""
        if not self.lean:
            self.journal.flush()
        async with self.stripe_lock:
            yield

    def intent_action(self, m: MilestoneRun, intent_id: str) -> PaymentIntentAction:
        return PaymentIntentAction(
            deal_id=self.spec.deal_id, milestone_key=m.key, payment_intent_id=intent_id
        )

    # ------------------------------------------------------------------ notices

    def notify(
        self,
        kind: EmailKind,
        party: Party,
        message_key: str,
        m: MilestoneRun | None = None,
        attachments: list[EmailAttachment] | None = None,
        **context: Any,
    ) -> None:
        """Mail one party beside the deal."""
        email = self.email(kind, party, message_key, m, attachments, **context)
        self.beside(f"the {kind.value} mail to {email.to}", calls.SEND_EMAIL, email, m)

    def notify_operator(
        self, kind: EmailKind, message_key: str, m: MilestoneRun | None = None, **context: Any
    ) -> None:
        """Mail the platform's operator (DEALFLOW_OPERATOR_EMAIL) beside the deal."""
        email = build_email(
            self.spec,
            kind,
            to=OPERATOR_MAILBOX,
            message_key=message_key,
            milestone=m.spec if m else None,
            **context,
        )
        self.beside(f"the {kind.value} mail to the operator", calls.SEND_EMAIL, email, m)

    def notify_both(
        self,
        kind: EmailKind,
        message_key: str,
        m: MilestoneRun | None = None,
        attachments: list[EmailAttachment] | None = None,
        **context: Any,
    ) -> None:
        for party in ("client", "vendor"):
            self.notify(kind, party, f"{message_key}:{party}", m, attachments, **context)

    async def send_mail(self, email: EmailInput, m: MilestoneRun | None) -> None:
        """Send a mail and wait until it is sent (or given up on)."""
        await self.attempt(
            f"the {email.kind.value} mail to {email.to}", calls.SEND_EMAIL.run(email), m
        )

    def email(
        self,
        kind: EmailKind,
        party: Party,
        message_key: str,
        m: MilestoneRun | None,
        attachments: list[EmailAttachment] | None = None,
        **context: Any,
    ) -> EmailInput:
        """One party's mail of this deal."""
        to = str(self.spec.client.email if party == "client" else self.spec.vendor.email)
        return build_email(
            self.spec,
            kind,
            to=to,
            message_key=message_key,
            milestone=m.spec if m else None,
            amount=m.amount_due if m else None,
            attachments=attachments or (),
            **context,
        )
