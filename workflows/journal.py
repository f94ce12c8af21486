"""What a deal writes down: its timeline and anomalies, mirrored to the Postgres ledger, with the
search attributes and the read model kept in step.

One coroutine writes the ledger, in order, so a newer read-model snapshot never lands before an
older one; it runs beside the deal, which never waits for Postgres.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from dealflow.messages import (
        DealSnapshot,
        DealStage,
        LedgerEvent,
        MoneyTotals,
        PaymentRecord,
        TimelineEntry,
    )
    from dealflow.models import DealSpec
    from dealflow.temporal import (
        DEAL_AMOUNT_CENTS,
        DEAL_CLIENT,
        DEAL_COLLECTED_CENTS,
        DEAL_STAGE,
    )
    from workflows import calls

Source = Literal["workflow", "client", "vendor", "operator", "stripe", "timer", "system"]


@dataclass(frozen=True)
class View:
    """What the search attributes and the read model show of the deal right now."""

    stage: DealStage
    money: MoneyTotals
    livemode: bool | None

    @property
    def collected(self) -> int:
        """Client money Stripe confirmed and nobody gave back: held or paid out."""
        return self.money.funded + self.money.released


class Journal:
    def __init__(self, spec: DealSpec, view: Callable[[], View]) -> None:
        self.timeline: list[TimelineEntry] = []
        self.anomalies: list[str] = []
        self._spec = spec
        self._view = view
        self._outbox: deque[LedgerEvent | DealSnapshot | PaymentRecord] = deque()
        self._closed = False
        self._published: tuple[DealStage, int] | None = None

    def record(
        self, source: Source, kind: str, message: str, milestone_key: str | None = None
    ) -> None:
        """One timeline entry and its audit row; the search attributes follow any change."""
        now = workflow.now()
        self.timeline.append(
            TimelineEntry(
                at=now, source=source, kind=kind, message=message, milestone_key=milestone_key
            )
        )
        self._outbox.append(
            LedgerEvent(
                event_key=f"{workflow.info().workflow_id}:{len(self.timeline)}",
                deal_id=self._spec.deal_id,
                milestone_key=milestone_key,
                kind=kind,
                source=source,
                occurred_at=now,
                detail={"message": message},
            )
        )
        self._publish()

    def anomaly(self, message: str, milestone_key: str | None = None) -> None:
        self.anomalies.append(message)
        self.record("system", "anomaly", message, milestone_key)

    def payment(self, payment: PaymentRecord) -> None:
        """Money Stripe confirmed, for the `payments` table."""
        self._outbox.append(payment)

    def _publish(self) -> None:
        """Search attributes and the read-model row, whenever the stage or the money changed."""
        view = self._view()
        if self._published == (view.stage, view.collected):
            return
        self._published = (view.stage, view.collected)
        spec = self._spec
        workflow.upsert_search_attributes(
            [
                DEAL_STAGE.value_set(view.stage.value),
                DEAL_CLIENT.value_set(str(spec.client.email).lower()),
                DEAL_AMOUNT_CENTS.value_set(spec.total_amount),
                DEAL_COLLECTED_CENTS.value_set(view.collected),
            ]
        )
        self._outbox.append(
            DealSnapshot(
                deal_id=spec.deal_id,
                workflow_id=workflow.info().workflow_id,
                title=spec.title,
                client_email=str(spec.client.email),
                vendor_email=str(spec.vendor.email),
                currency=spec.currency,
                stage=view.stage,
                amount_total=spec.total_amount,
                funded=view.money.funded,
                released=view.money.released,
                refunded=view.money.refunded,
                livemode=view.livemode,
                demo=spec.policy.demo,
                updated_at=workflow.now(),
            )
        )

    async def write_ledger(self) -> None:
        """Write the outbox to the ledger until `close()` and the outbox is empty."""
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox) or self._closed)
            if not self._outbox:
                return
            entry = self._outbox.popleft()
            try:
                await calls.write_ledger(entry)
            except ActivityError as error:
                # Kept in the workflow only: re-queuing it could fail the same way forever.
                message = f"Ledger write failed ({type(entry).__name__}): {failure(error)}"
                self.anomalies.append(message)
                self.timeline.append(
                    TimelineEntry(
                        at=workflow.now(), source="system", kind="anomaly", message=message
                    )
                )

    def close(self) -> None:
        self._closed = True


def failure(error: ActivityError) -> str:
    """Why an activity failed for good, for people."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'error'}: {cause.message}"
    return str(cause or error)
