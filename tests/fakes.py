"""Recording fakes of every activity DealWorkflow calls, registered under the real names.

Stripe is out of reach in workflow tests, so `FakeActivities` keeps the little state needed to
answer as Stripe does (sessions, payment intents, refunds, transfers); tests pay sessions through
it and then send the webhook. Every call is recorded in order. Mails are rendered with the real
templates, so a context key the workflow forgot fails here as it would in production.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.certificate_pdf import render_certificate_pdf
from activities.email import render
from dealflow.access_codes import access_code, access_code_digest
from dealflow.messages import (
    AccessCodeMail,
    AccessCodeSent,
    ArtifactDeliveryInput,
    CaptureMethod,
    CertificateInput,
    CertificateResult,
    ChargeState,
    CheckoutSession,
    CheckoutSessionState,
    CreateCheckoutInput,
    DealSnapshot,
    DeliveryResult,
    DisputeState,
    EmailInput,
    EmailKind,
    EmailResult,
    ExpireCheckoutInput,
    LedgerBatch,
    LedgerEvent,
    LedgerWriteResult,
    PayeeAccount,
    PaymentIntentAction,
    PaymentIntentState,
    PaymentRecord,
    QuarantinedRow,
    ReceiptInput,
    ReceiptResult,
    RefundInput,
    RefundResult,
    RefundState,
    ReverseTransferInput,
    SubmitEvidenceInput,
    TransferInput,
    TransferResult,
    TransferReversalResult,
    WorkOrderInput,
)
from stripe_sandbox.fees import card_fee, payment_fee


@dataclass
class Call:
    name: str
    arg: Any


@dataclass
class FakeSession:
    input: CreateCheckoutInput
    session_id: str
    status: str = "open"
    payment_intent_id: str | None = None

    def state(self, intents: dict[str, PaymentIntentState]) -> CheckoutSessionState:
        intent = intents.get(self.payment_intent_id or "")
        paid = intent is not None and intent.status == "succeeded"
        return CheckoutSessionState(
            session_id=self.session_id,
            status=self.status,  # type: ignore[arg-type]
            payment_status="paid" if paid else "unpaid",
            payment_intent_id=self.payment_intent_id,
            amount_total=self.input.amount,
            currency=self.input.currency,
            livemode=False,
            metadata=self.metadata,
        )

    @property
    def metadata(self) -> dict[str, str]:
        """What `create_checkout_session` puts on the session and its payment intent."""
        return {
            "deal_id": self.input.deal_id,
            "milestone_key": self.input.milestone_key,
            "generation": str(self.input.generation),
        }


def card_fees(captured: int, currency: str) -> dict[str, Any]:
    """The fee and net Stripe's balance transaction reports for a charge (the sandbox's rates)."""
    fee = card_fee(captured, currency)
    return {"fee": fee, "net": captured - fee, "fee_currency": currency}


def debit_fees(captured: int, currency: str, method: str | None) -> dict[str, Any]:
    """The fee and net of a bank debit that succeeded (the sandbox's rates)."""
    fee = payment_fee(captured, currency, method or "us_bank_account")
    return {"fee": fee, "net": captured - fee, "fee_currency": currency}


#: The secret key the fake worker makes access codes with.
FAKE_SECRET_KEY = "fake-worker-secret-key-for-access-codes"


@dataclass
class FakeActivities:
    calls: list[Call] = field(default_factory=list)
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    intents: dict[str, PaymentIntentState] = field(default_factory=dict)
    refunds: dict[tuple[str, str], RefundResult] = field(default_factory=dict)
    ledger_events: dict[str, LedgerEvent] = field(default_factory=dict)
    snapshots: list[DealSnapshot] = field(default_factory=list)
    payments: dict[tuple[str, str], PaymentRecord] = field(default_factory=dict)
    receipts: dict[tuple[str, str], ReceiptResult] = field(default_factory=dict)
    #: Refunds made in Stripe's dashboard, and chargebacks, by id.
    outside_refunds: dict[str, RefundState] = field(default_factory=dict)
    disputes: dict[str, DisputeState] = field(default_factory=dict)
    #: Connected accounts whose onboarding is not complete: they cannot receive transfers.
    unready_accounts: set[str] = field(default_factory=set)
    #: activity name -> (ApplicationError type, predicate on the input) for permanent failures
    failures: dict[str, tuple[str, Callable[[Any], bool]]] = field(default_factory=dict)
    #: Ledger events "Postgres refuses": quarantined by write_ledger, as the real one does.
    refused_events: Callable[[LedgerEvent], bool] = lambda _: False
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.create_checkout_session,
            self.retrieve_checkout_session,
            self.retrieve_payment_intent,
            self.retrieve_charge,
            self.retrieve_refund,
            self.retrieve_dispute,
            self.expire_checkout_session,
            self.capture_payment,
            self.cancel_authorization,
            self.refund_payment,
            self.transfer_to_vendor,
            self.retrieve_payee_account,
            self.reverse_transfer,
            self.submit_dispute_evidence,
            self.send_email,
            self.send_access_code,
            self.dispatch_work_order,
            self.deliver_artifacts,
            self.write_ledger,
            self.record_event,
            self.upsert_deal,
            self.record_payment,
            self.issue_receipt,
            self.issue_signing_certificate,
        ]

    # ------------------------------------------------------------------ test controls

    def fail(
        self, name: str, error_type: str, when: Callable[[Any], bool] = lambda _: True
    ) -> None:
        """Make activity `name` fail permanently (non-retryable) for inputs matching `when`."""
        self.failures[name] = (error_type, when)

    def pay(
        self,
        session_id: str,
        *,
        amount: int | None = None,
        currency: str | None = None,
        intent_id: str | None = None,
    ) -> PaymentIntentState:
        """The client pays a session on Stripe's page (the webhook is the test's to send)."""
        session = self.sessions[session_id]
        intent = self.add_intent(
            session.input.milestone_key,
            deal_id=session.input.deal_id,
            amount=amount or session.input.amount,
            currency=currency or session.input.currency,
            manual=session.input.capture_method is CaptureMethod.MANUAL,
            intent_id=intent_id,
            generation=session.input.generation,
        )
        session.status = "complete"
        session.payment_intent_id = intent.payment_intent_id
        return intent

    def pay_by_debit(self, session_id: str, method: str = "us_bank_account") -> PaymentIntentState:
        """The client pays a session by bank debit: the session completes unpaid and the
        payment intent is processing until `settle_debit`."""
        intent = self.pay(session_id)
        processing = intent.model_copy(
            update={
                "status": "processing",
                "amount_received": 0,
                "payment_method_type": method,
                **dict.fromkeys(("fee", "net", "fee_currency")),
            }
        )
        self.intents[intent.payment_intent_id] = processing
        return processing

    def settle_debit(self, intent_id: str, *, succeeded: bool) -> PaymentIntentState:
        """Stripe's answer on a processing debit: the money arrived, or the bank refused it."""
        intent = self.intents[intent_id]
        if succeeded:
            settled = intent.model_copy(
                update={
                    "status": "succeeded",
                    "amount_received": intent.amount,
                    **debit_fees(intent.amount, intent.currency, intent.payment_method_type),
                }
            )
        else:
            settled = intent.model_copy(
                update={
                    "status": "requires_payment_method",
                    "failure_message": "The customer's bank account has been closed.",
                }
            )
        self.intents[intent_id] = settled
        return settled

    def add_intent(
        self,
        milestone_key: str,
        *,
        deal_id: str,
        amount: int,
        currency: str,
        manual: bool = False,
        intent_id: str | None = None,
        generation: int | None = None,
    ) -> PaymentIntentState:
        """A payment that succeeded (or, manual capture, is authorized) at Stripe; through the
        milestone's Checkout Session of `generation`, or made some other way."""
        intent_id = intent_id or f"pi_{next(self._ids)}"
        intent = PaymentIntentState(
            payment_intent_id=intent_id,
            status="requires_capture" if manual else "succeeded",
            amount=amount,
            amount_capturable=amount if manual else 0,
            amount_received=0 if manual else amount,
            currency=currency,
            livemode=False,
            latest_charge=f"ch_{intent_id}",
            metadata={"deal_id": deal_id, "milestone_key": milestone_key}
            | ({"generation": str(generation)} if generation else {}),
            **({} if manual else card_fees(amount, currency)),
        )
        self.intents[intent_id] = intent
        return intent

    def refund_outside(self, intent_id: str, amount: int, refund_id: str) -> RefundState:
        """Someone refunds part of a payment in Stripe's dashboard."""
        intent = self.intents[intent_id]
        refund = RefundState(
            refund_id=refund_id,
            payment_intent_id=intent_id,
            charge_id=intent.latest_charge,
            amount=amount,
            currency=intent.currency,
            status="succeeded",
            livemode=False,
        )
        self.outside_refunds[refund_id] = refund
        return refund

    def chargeback(
        self,
        intent_id: str,
        dispute_id: str,
        status: str = "needs_response",
        due_by: datetime | None = None,
    ) -> None:
        """The client's bank disputes the payment (or, later, decides with `status`); evidence
        is due by `due_by` (None: the network takes none)."""
        intent = self.intents[intent_id]
        self.disputes[dispute_id] = DisputeState(
            dispute_id=dispute_id,
            charge_id=intent.latest_charge or "",
            payment_intent_id=intent_id,
            amount=intent.amount,
            currency=intent.currency,
            status=status,
            reason="fraudulent",
            livemode=False,
            evidence_due_by=due_by,
        )

    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    def args(self, name: str) -> list[Any]:
        return [call.arg for call in self.calls if call.name == name]

    def mails(self, kind: EmailKind | None = None, to: str | None = None) -> list[EmailInput]:
        return [
            mail
            for mail in self.args("send_email")
            if (kind is None or mail.kind is kind) and (to is None or mail.to == to)
        ]

    def _called(self, name: str, arg: Any) -> None:
        self.calls.append(Call(name, arg))
        failure = self.failures.get(name)
        if failure is not None and failure[1](arg):
            raise ApplicationError(f"{name} refused (test)", type=failure[0], non_retryable=True)

    # ------------------------------------------------------------------ payments

    @activity.defn(name="create_checkout_session")
    async def create_checkout_session(self, input: CreateCheckoutInput) -> CheckoutSession:
        self._called("create_checkout_session", input)
        session_id = f"cs_test_{input.deal_id}_{input.milestone_key}_{input.generation}"
        self.sessions.setdefault(session_id, FakeSession(input, session_id))
        return CheckoutSession(
            session_id=session_id,
            url=f"https://checkout.stripe.com/c/pay/{session_id}",
            expires_at=input.expires_at,
            livemode=False,
        )

    @activity.defn(name="retrieve_checkout_session")
    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSessionState:
        self._called("retrieve_checkout_session", session_id)
        return self.sessions[session_id].state(self.intents)

    @activity.defn(name="retrieve_payment_intent")
    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentState:
        self._called("retrieve_payment_intent", payment_intent_id)
        return self.intents[payment_intent_id]

    @activity.defn(name="retrieve_charge")
    async def retrieve_charge(self, charge_id: str) -> ChargeState:
        self._called("retrieve_charge", charge_id)
        intent = next((i for i in self.intents.values() if i.latest_charge == charge_id), None)
        if intent is None:
            raise ApplicationError(f"no charge {charge_id}", type="StripeInvalidRequest", non_retryable=True)
        pi = intent.payment_intent_id
        refunded = sum(r.amount for (p, _), r in self.refunds.items() if p == pi)
        refunded += sum(r.amount for r in self.outside_refunds.values() if r.payment_intent_id == pi)
        return ChargeState(
            charge_id=charge_id,
            payment_intent_id=pi,
            amount=intent.amount,
            amount_captured=intent.amount_received,
            amount_refunded=refunded,
            currency=intent.currency,
            refunded=refunded >= intent.amount_received > 0,
            livemode=False,
            metadata=intent.metadata,
            disputed=any(d.charge_id == charge_id for d in self.disputes.values()),
        )

    @activity.defn(name="retrieve_refund")
    async def retrieve_refund(self, refund_id: str) -> RefundState:
        self._called("retrieve_refund", refund_id)
        ours = {r.refund_id: (pi, r) for (pi, _), r in self.refunds.items()}
        if refund_id in ours:
            pi, refund = ours[refund_id]
            return RefundState(
                refund_id=refund_id,
                payment_intent_id=pi,
                charge_id=self.intents[pi].latest_charge,
                amount=refund.amount,
                currency=refund.currency,
                status=refund.status,
                livemode=False,
            )
        if refund_id not in self.outside_refunds:
            raise ApplicationError(f"no refund {refund_id}", type="StripeInvalidRequest", non_retryable=True)
        return self.outside_refunds[refund_id]

    @activity.defn(name="retrieve_dispute")
    async def retrieve_dispute(self, dispute_id: str) -> DisputeState:
        self._called("retrieve_dispute", dispute_id)
        if dispute_id not in self.disputes:
            raise ApplicationError(f"no dispute {dispute_id}", type="StripeInvalidRequest", non_retryable=True)
        return self.disputes[dispute_id]

    @activity.defn(name="expire_checkout_session")
    async def expire_checkout_session(self, input: ExpireCheckoutInput) -> CheckoutSessionState:
        self._called("expire_checkout_session", input)
        session = self.sessions[input.session_id]
        if session.status == "open":
            session.status = "expired"
        return session.state(self.intents)

    @activity.defn(name="capture_payment")
    async def capture_payment(self, input: PaymentIntentAction) -> PaymentIntentState:
        self._called("capture_payment", input)
        intent = self.intents[input.payment_intent_id]
        if intent.status == "requires_capture":
            intent = intent.model_copy(
                update={
                    "status": "succeeded",
                    "amount_received": intent.amount_capturable,
                    "amount_capturable": 0,
                    **card_fees(intent.amount_capturable, intent.currency),
                }
            )
            self.intents[intent.payment_intent_id] = intent
        return intent

    @activity.defn(name="cancel_authorization")
    async def cancel_authorization(self, input: PaymentIntentAction) -> PaymentIntentState:
        self._called("cancel_authorization", input)
        intent = self.intents[input.payment_intent_id].model_copy(
            update={"status": "canceled", "amount_capturable": 0}
        )
        self.intents[intent.payment_intent_id] = intent
        return intent

    @activity.defn(name="refund_payment")
    async def refund_payment(self, input: RefundInput) -> RefundResult:
        self._called("refund_payment", input)
        intent = self.intents[input.payment_intent_id]
        key = (input.payment_intent_id, input.purpose)
        if key not in self.refunds:
            self.refunds[key] = RefundResult(
                refund_id=f"re_{next(self._ids)}",
                amount=input.amount or intent.amount_received,
                currency=intent.currency,
                status="succeeded",
                livemode=False,
            )
        return self.refunds[key]

    @activity.defn(name="transfer_to_vendor")
    async def transfer_to_vendor(self, input: TransferInput) -> TransferResult:
        self._called("transfer_to_vendor", input)
        return TransferResult(
            transfer_id=f"tr_{input.milestone_key}",
            amount=input.amount,
            currency=input.currency,
            livemode=False,
        )

    @activity.defn(name="retrieve_payee_account")
    async def retrieve_payee_account(self, account_id: str) -> PayeeAccount:
        self._called("retrieve_payee_account", account_id)
        ready = account_id not in self.unready_accounts
        return PayeeAccount(
            account_id=account_id,
            transfers_active=ready,
            charges_enabled=ready,
            payouts_enabled=ready,
            details_submitted=ready,
            requirements_due=[] if ready else ["external_account", "tos_acceptance.date"],
            disabled_reason=None if ready else "requirements.past_due",
        )

    @activity.defn(name="reverse_transfer")
    async def reverse_transfer(self, input: ReverseTransferInput) -> TransferReversalResult:
        self._called("reverse_transfer", input)
        return TransferReversalResult(
            reversal_id=f"trr_{input.milestone_key}_{input.purpose}",
            amount=input.amount,
            currency="usd",
        )

    @activity.defn(name="submit_dispute_evidence")
    async def submit_dispute_evidence(self, input: SubmitEvidenceInput) -> DisputeState:
        self._called("submit_dispute_evidence", input)
        dispute = self.disputes[input.dispute_id].model_copy(
            update={"status": "under_review", "has_evidence": True, "submission_count": 1}
        )
        self.disputes[input.dispute_id] = dispute
        return dispute

    # ------------------------------------------------------------------ mail and hand-offs

    @activity.defn(name="send_email")
    async def send_email(self, input: EmailInput) -> EmailResult:
        self._called("send_email", input)
        render(input.kind, {**input.context, "subject": input.subject, "portal_url": None})
        return EmailResult(message_id=f"<{input.message_key}@{input.deal_id}.dealflow.test>")

    @activity.defn(name="send_access_code")
    async def send_access_code(self, input: AccessCodeMail) -> AccessCodeSent:
        """As the worker's: the code from the secret key, in the mail (which `mails` lists)."""
        self._called("send_access_code", input)
        email = input.email
        code = access_code(FAKE_SECRET_KEY, email.deal_id, input.issue)
        sent = await self.send_email(email.model_copy(update={"context": {**email.context, "access_code": code}}))
        return AccessCodeSent(
            message_id=sent.message_id, digest=access_code_digest(email.deal_id, input.issue, code)
        )

    @activity.defn(name="dispatch_work_order")
    async def dispatch_work_order(self, input: WorkOrderInput) -> DeliveryResult:
        self._called("dispatch_work_order", input)
        return DeliveryResult(
            status_code=202, delivery_id=f"wo-{input.milestone_key}-{input.revision}"
        )

    @activity.defn(name="deliver_artifacts")
    async def deliver_artifacts(self, input: ArtifactDeliveryInput) -> DeliveryResult:
        self._called("deliver_artifacts", input)
        return DeliveryResult(status_code=250, delivery_id=f"artifacts-{input.milestone_key}")

    # ------------------------------------------------------------------ ledger and receipts

    @activity.defn(name="write_ledger")
    async def write_ledger(self, batch: LedgerBatch) -> LedgerWriteResult:
        """Like the real one: batches may land in any order; the newest snapshot wins."""
        self._called("write_ledger", batch)
        refused = [e for e in batch.events if self.refused_events(e)]
        for event in batch.events:
            if event not in refused:
                self.ledger_events.setdefault(event.event_key, event)
        for payment in batch.payments:
            self.payments.setdefault((payment.stripe_id, payment.kind), payment)
        if batch.snapshot is not None:
            bisect.insort(self.snapshots, batch.snapshot, key=lambda s: s.version)
        rows = len(batch.events) + len(batch.payments) + (batch.snapshot is not None)
        return LedgerWriteResult(
            written=rows - len(refused),
            quarantined=[
                QuarantinedRow(entry="event", key=e.event_key, error="DataError: refused (test)")
                for e in refused
            ],
        )

    @activity.defn(name="record_event")
    async def record_event(self, event: LedgerEvent) -> bool:
        self._called("record_event", event)
        return self.ledger_events.setdefault(event.event_key, event) is event

    @activity.defn(name="upsert_deal")
    async def upsert_deal(self, snapshot: DealSnapshot) -> None:
        self._called("upsert_deal", snapshot)
        self.snapshots.append(snapshot)

    @activity.defn(name="record_payment")
    async def record_payment(self, payment: PaymentRecord) -> bool:
        self._called("record_payment", payment)
        return self.payments.setdefault((payment.stripe_id, payment.kind), payment) is payment

    @activity.defn(name="issue_receipt")
    async def issue_receipt(self, input: ReceiptInput) -> ReceiptResult:
        self._called("issue_receipt", input)
        key = (input.deal_id, input.milestone_key)
        if key not in self.receipts:
            pdf = f"%PDF-1.4 receipt {input.milestone_key} {input.amount}".encode()
            self.receipts[key] = ReceiptResult(
                receipt_number=f"R-{len(self.receipts) + 1:05d}",
                pdf_b64=base64.b64encode(pdf).decode(),
                sha256="0" * 64,
            )
        return self.receipts[key]

    @activity.defn(name="issue_signing_certificate")
    async def issue_signing_certificate(self, input: CertificateInput) -> CertificateResult:
        """The real PDF, without the database."""
        self._called("issue_signing_certificate", input)
        pdf = render_certificate_pdf(input)
        return CertificateResult(
            pdf_b64=base64.b64encode(pdf).decode(), sha256=hashlib.sha256(pdf).hexdigest()
        )
