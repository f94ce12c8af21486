"""Activity calls from DealWorkflow, one helper per activity family, each with its own timeouts
and retry policy.

Transient failures (network, 429, 5xx) are retried here with exponential backoff. Permanent ones
arrive as non-retryable `ApplicationError`s; the workflow catches them (as `ActivityError`) and
records them. Mail and vendor hand-offs give up after a day so an outage cannot park a deal's
timers forever; Stripe calls keep trying, because money must not be skipped; ledger batches give
up after three days, as an anomaly of the deal, since nothing else waits for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from activities import delivery, email, ledger, receipts, stripe_errors
    from activities.certificates import CertificateActivities
    from activities.delivery import DeliveryActivities
    from activities.email import EmailActivities
    from activities.ledger import LedgerActivities
    from activities.receipts import ReceiptActivities
    from dealflow import activity_timeouts as timeouts
    from dealflow.console import activity_summary
    from dealflow.messages import (
        DealSnapshot,
        LedgerBatch,
        LedgerEvent,
        LedgerWriteResult,
        PaymentRecord,
    )

#: ApplicationError types the activities raise for failures a retry cannot fix, by the names
#: they raise them under. (`activities.stripe_errors` lists only Stripe's five of them.)
NON_RETRYABLE_ERROR_TYPES = [
    stripe_errors.CARD_DECLINED,
    stripe_errors.STRIPE_INVALID_REQUEST,
    stripe_errors.STRIPE_AUTHENTICATION,
    stripe_errors.STRIPE_NOT_CONFIGURED,
    stripe_errors.STRIPE_IDEMPOTENCY_CONFLICT,
    email.PERMANENT_SMTP_ERROR,
    email.TEMPLATE_ERROR,
    email.INVALID_ATTACHMENT,
    delivery.VENDOR_REJECTED,
    delivery.INVALID_URL,
    delivery.NO_ARTIFACTS,
    delivery.ARTIFACT_MISMATCH,
    delivery.ARTIFACT_TOO_LARGE,
    ledger.LEDGER_REJECTED,
    receipts.INVALID_RECEIPT,
]

#: Backoffs a local activity waits out inside the workflow task (1 s, 2 s); longer ones go on a
#: timer, and the task ends meanwhile.
IN_TASK_RETRIES = timedelta(seconds=3)

Arg = TypeVar("Arg")
Result = TypeVar("Result")


class AttemptTimeouts(Protocol):
    """What `dealflow.activity_timeouts` derives from each family's client settings."""

    @property
    def attempt_timeout(self) -> timedelta: ...

    @property
    def heartbeat_timeout(self) -> timedelta | None: ...


@dataclass(frozen=True)
class Family:
    """How long one attempt may take (from its clients' own timeouts and retries, so no attempt
    is still running when its retry starts), how soon a dead worker is noticed (heartbeats), how
    retries back off, and when to give up altogether."""

    timeouts: AttemptTimeouts
    maximum_interval: timedelta
    schedule_to_close: timedelta | None = None
    #: Where its tasks stand in the task queue when the workers are behind (1 first, 3 the
    #: default); only the order of a backlog, so recorded histories replay either way.
    priority: Priority = Priority.default
    #: The bound of an attempt run inside the workflow task (`start_local`), when its clients
    #: are set shorter there; the family's own otherwise. A local activity's timeouts are not
    #: part of its marker, so recorded histories replay either way.
    in_task: AttemptTimeouts | None = None

    async def call(self, activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg) -> Result:
        return await self.start(activity, arg)

    def start(
        self, activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg
    ) -> workflow.ActivityHandle[Result]:
        """Schedule the activity now (the command is issued in this step); await the handle.
        Its line in the Temporal UI says what it does (`activity_summary`)."""
        return workflow.start_activity_method(
            activity,
            arg,
            summary=activity_summary(activity.__name__, arg),
            start_to_close_timeout=self.timeouts.attempt_timeout,
            heartbeat_timeout=self.timeouts.heartbeat_timeout,
            schedule_to_close_timeout=self.schedule_to_close,
            priority=self.priority,
            retry_policy=self.retry_policy(),
        )

    def start_local(
        self, activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg
    ) -> workflow.ActivityHandle[Result]:
        """Run the activity in the workflow task that asks for it (a local activity): no task
        queue and no workflow task of its own, so what the deal does with its result goes out
        in the same task. For short calls whose attempt may simply run again after a crash
        (reads). The worker retries it within the task for `IN_TASK_RETRIES`, then each backoff
        is a timer, so an outage does not hold the deal's task (and its updates) for long."""
        return workflow.start_local_activity_method(
            activity,
            arg,
            summary=activity_summary(activity.__name__, arg),
            start_to_close_timeout=(self.in_task or self.timeouts).attempt_timeout,
            schedule_to_close_timeout=self.schedule_to_close,
            retry_policy=self.retry_policy(),
            local_retry_threshold=IN_TASK_RETRIES,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=self.maximum_interval,
            non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
        )


#: Money first: when the workers are behind, a payment is confirmed (and a payout made) before
#: the mails and hand-offs queued before it, then the ledger's record of it (the read model that
#: shows it funded); everything else takes its turn.
MONEY_FIRST, RECORD_NEXT = Priority(priority_key=1), Priority(priority_key=2)

STRIPE = Family(
    timeouts=timeouts.STRIPE,
    maximum_interval=timedelta(minutes=2),
    priority=MONEY_FIRST,
    in_task=timeouts.STRIPE_READ_IN_TASK,
)
MAIL = Family(
    timeouts=timeouts.MAIL,
    maximum_interval=timedelta(minutes=10),
    schedule_to_close=timedelta(days=1),
)
DELIVERY = Family(
    timeouts=timeouts.DELIVERY,
    maximum_interval=timedelta(minutes=10),
    schedule_to_close=timedelta(days=1),
)
LEDGER = Family(
    timeouts=timeouts.LEDGER, maximum_interval=timedelta(minutes=1), priority=RECORD_NEXT
)
#: A database down for three days is given up on (an anomaly of the deal), never retried for
#: ever; nothing waits for a batch but the end of the deal.
LEDGER_BATCH = Family(
    timeouts=timeouts.LEDGER_BATCH,
    maximum_interval=timedelta(minutes=5),
    schedule_to_close=timedelta(days=3),
    priority=RECORD_NEXT,
)
RECEIPTS = Family(timeouts=timeouts.RECEIPTS, maximum_interval=timedelta(minutes=1))
CERTIFICATES = Family(timeouts=timeouts.CERTIFICATES, maximum_interval=timedelta(minutes=1))


async def stripe(activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg) -> Result:
    """A `PaymentActivities` method; Stripe is asked again until it answers."""
    return await STRIPE.call(activity, arg)


async def stripe_read_in_task(
    activity: Callable[[Any, Arg], Awaitable[Result]], arg: Arg
) -> Result:
    """A read of Stripe in the workflow task that needs it (`Family.start_local`), asked again
    until Stripe answers: a payment is confirmed and counted in the task its hint woke.

    sdk-core hands the workflow a local activity's own failure (a non-retryable refusal: a
    forged hint's made-up intent) without the `ActivityError` around it that every other
    activity's failure has; raised as it is, an `ApplicationError` would fail the deal. It is
    wrapped here, so the deal handles it as any activity's failure."""
    try:
        return await STRIPE.start_local(activity, arg)
    except (ApplicationError, TemporalTimeoutError) as error:
        raise ActivityError(
            f"{activity.__name__} failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=activity.__name__,
            activity_id="",
            retry_state=None,
        ) from error


@dataclass(frozen=True)
class Call(Generic[Arg, Result]):
    """One activity with its family's options, to start now or to await later."""

    family: Family
    activity: Callable[[Any, Arg], Awaitable[Result]]

    def start(self, arg: Arg) -> workflow.ActivityHandle[Result]:
        return self.family.start(self.activity, arg)

    async def run(self, arg: Arg) -> Result:
        return await self.family.call(self.activity, arg)


SEND_EMAIL = Call(MAIL, EmailActivities.send_email)
SEND_ACCESS_CODE = Call(MAIL, EmailActivities.send_access_code)
DISPATCH_WORK_ORDER = Call(DELIVERY, DeliveryActivities.dispatch_work_order)
DELIVER_ARTIFACTS = Call(DELIVERY, DeliveryActivities.deliver_artifacts)
ISSUE_RECEIPT = Call(RECEIPTS, ReceiptActivities.issue_receipt)
ISSUE_CERTIFICATE = Call(CERTIFICATES, CertificateActivities.issue_signing_certificate)


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
