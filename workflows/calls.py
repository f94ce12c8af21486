"""Activity calls from DealWorkflow, one helper per activity family, each with its own timeouts
and retry policy.

Transient failures (network, 429, 5xx) are retried here with exponential backoff. Permanent ones
arrive as non-retryable `ApplicationError`s; the workflow catches them (as `ActivityError`) and
records them. Mail and vendor hand-offs give up after a day so an outage cannot park a deal's
timers forever; Stripe and ledger calls keep trying, because money and the audit trail must not
be skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from activities.email import EmailActivities
    from activities.ledger import LedgerActivities
    from activities.receipts import ReceiptActivities
    from dealflow.messages import (
        ArtifactDeliveryInput,
        DealSnapshot,
        DeliveryResult,
        EmailInput,
        EmailResult,
        LedgerBatch,
        LedgerEvent,
        LedgerWriteResult,
        PaymentRecord,
        ReceiptInput,
        ReceiptResult,
        WorkOrderInput,
    )

#: ApplicationError types the activities raise for failures a retry cannot fix.
NON_RETRYABLE_ERROR_TYPES = [
    "CardDeclined",
    "StripeInvalidRequest",
    "StripeAuthentication",
    "StripeNotConfigured",
    "StripeIdempotencyConflict",
    "PermanentSmtpError",
    "TemplateError",
    "InvalidAttachment",
    "VendorRejected",
    "InvalidUrl",
    "NoArtifacts",
    "ArtifactMismatch",
    "ArtifactTooLarge",
    "LedgerRejected",
    "InvalidReceipt",
]

Arg = TypeVar("Arg")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Family:
    """How long one attempt may take, how retries back off, and when to give up altogether."""

    start_to_close: timedelta
    maximum_interval: timedelta
    schedule_to_close: timedelta | None = None

    async def call(self, activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg) -> Result:
        return await self.start(activity, arg)

    def start(
        self, activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg
    ) -> workflow.ActivityHandle[Result]:
        """Schedule the activity now (the command is issued in this step); await the handle."""
        return workflow.start_activity_method(
            activity,
            arg,
            start_to_close_timeout=self.start_to_close,
            schedule_to_close_timeout=self.schedule_to_close,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=self.maximum_interval,
                non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
            ),
        )


STRIPE = Family(start_to_close=timedelta(seconds=60), maximum_interval=timedelta(minutes=2))
MAIL = Family(
    start_to_close=timedelta(seconds=60),
    maximum_interval=timedelta(minutes=10),
    schedule_to_close=timedelta(days=1),
)
DELIVERY = Family(
    start_to_close=timedelta(seconds=120),
    maximum_interval=timedelta(minutes=10),
    schedule_to_close=timedelta(days=1),
)
LEDGER = Family(start_to_close=timedelta(seconds=15), maximum_interval=timedelta(minutes=1))
#: A batch holds a step's rows (each statement up to 10 s); a database down for three days is
#: given up on (an anomaly of the deal) rather than retried for ever.
LEDGER_BATCH = Family(
    start_to_close=timedelta(seconds=60),
    maximum_interval=timedelta(minutes=5),
    schedule_to_close=timedelta(days=3),
)
RECEIPTS = Family(start_to_close=timedelta(seconds=30), maximum_interval=timedelta(minutes=1))


async def stripe(activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg) -> Result:
    """A `PaymentActivities` method; Stripe is asked again until it answers."""
    return await STRIPE.call(activity, arg)


async def send_email(email: EmailInput) -> EmailResult:
    return await MAIL.call(EmailActivities.send_email, email)


async def dispatch_work_order(order: WorkOrderInput) -> DeliveryResult:
    return await DELIVERY.call(DeliveryActivities.dispatch_work_order, order)


async def deliver_artifacts(delivery: ArtifactDeliveryInput) -> DeliveryResult:
    return await DELIVERY.call(DeliveryActivities.deliver_artifacts, delivery)


async def issue_receipt(receipt: ReceiptInput) -> ReceiptResult:
    return await RECEIPTS.call(ReceiptActivities.issue_receipt, receipt)


def start_ledger_batch(batch: LedgerBatch) -> workflow.ActivityHandle[LedgerWriteResult]:
    """One step's ledger rows, written in one transaction beside the deal."""
    return LEDGER_BATCH.start(LedgerActivities.write_ledger, batch)


async def write_ledger(entry: LedgerEvent | DealSnapshot | PaymentRecord) -> None:
    """Legacy, one ledger row: an audit event, the deal's snapshot, or a confirmed payment."""
    if isinstance(entry, LedgerEvent):
        await LEDGER.call(LedgerActivities.record_event, entry)
    elif isinstance(entry, DealSnapshot):
        await LEDGER.call(LedgerActivities.upsert_deal, entry)
    else:
        await LEDGER.call(LedgerActivities.record_payment, entry)
