"""What a deal writes down: its timeline and anomalies, mirrored to the Postgres ledger, with the
search attributes and the read model kept in step.

The ledger is written per step: whatever a coroutine of the workflow recorded goes out as one
`write_ledger` activity when that coroutine next waits (`flush`), started and not awaited, so the
deal never waits for Postgres. The workflow's commands are then a function of each step alone.

Why, and why the old way must stay for old deals: when a fresh worker takes a deal (its worker
was killed) and an update waits, sdk-core folds a last workflow task that issued no commands into
the update's activation, so the update runs before that task's activity result (live:
[do_update, resolve_activity]); on replay the two come in separate activations, result first
(see sdk-python#1591, and sdk-core's `find_end_index_of_next_wft_seq`). With the old writer
coroutine, "is a ledger write in flight?" then had different answers live and on replay, and so
had the order of the deal's commands. Now no command depends on a ledger write's progress: a
batch's result only adds anomalies. Deals whose histories began before this (no
`LEDGER_PER_STEP` marker) keep the writer coroutine (`write_ledger`) so they replay as recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import (
        DEAL_CLIENT,
        DEAL_STAGE_SINCE,
        EventKind,
        search_attribute_updates,
    )
    from dealflow.messages import (
        DealSnapshot,
        DealStage,
        LedgerBatch,
        LedgerEvent,
        LedgerWriteResult,
        MoneyTotals,
        PaymentRecord,
        TimelineEntry,
    )
    from dealflow.models import DealSpec
    from workflows import calls

Source = Literal["workflow", "client", "vendor", "operator", "stripe", "timer", "system"]

#: `workflow.patched` id: this deal writes its ledger in one batch per step.
LEDGER_PER_STEP = "ledger-per-step"


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
    def __init__(
        self,
        spec: DealSpec,
        view: Callable[[], View],
        *,
        per_step: bool,
        publish_on_flush: bool,
        stage_since: bool = False,
    ) -> None:
        self.timeline: list[TimelineEntry] = []
        self.anomalies: list[str] = []
        self._spec = spec
        self._view = view
        #: `DealClient` as the starter set it (a keyed hash of the address, `client_search_value`):
        #: the workflow has no secret to make it, so it keeps it. Deals started without it, and
        #: those started before it was hashed, show the address, as they always did.
        self._client = workflow.info().typed_search_attributes.get(DEAL_CLIENT) or (
            str(spec.client.email).lower()
        )
        #: Entries not yet handed to the ledger, by the coroutine that owns them (see `owner`).
        self._outboxes: dict[Hashable, list[LedgerEvent | DealSnapshot | PaymentRecord]] = {}
        #: Whose outbox an entry recorded now goes to; one outbox for all, unless `by_owner`.
        self._owner: Callable[[], Hashable] = lambda: None
        self._closed = False
        self._published: tuple[DealStage, int] | None = None
        #: Both decided by the deal when it is built (`DealContext`): patch decisions may not
        #: wait, since an update can come in its first activation, before `run`.
        self._per_step = per_step
        #: Search attributes and the read-model row once per flush, with the step's last view,
        #: instead of once per recorded change (deals recorded before `LEAN_STEPS` do the latter).
        self._publish_on_flush = publish_on_flush
        #: `DealStageSince` follows each change of stage (deals before DISPUTES_AND_DEBITS lack it).
        self._stage_since = stage_since
        #: What the starter already set the search attributes to, when they show this deal as
        #: it begins: the first change to show needs the read-model row, not an upsert.
        self._started_as = self._start_attributes() if publish_on_flush else None
        self._batches: list[asyncio.Task[LedgerWriteResult]] = []
        #: An amendment changed the contract: the next flush shows it even if stage and money
        #: did not change.
        self._terms_changed = False

    def amend(self, spec: DealSpec) -> None:
        """The deal's terms changed (an accepted amendment): publish its new contract amount."""
        self._spec = spec
        self._terms_changed = True

    def record(
        self,
        source: Source,
        kind: EventKind,
        message: str,
        milestone_key: str | None = None,
        detail: dict[str, Any] | None = None,
        operator: str | None = None,
    ) -> None:
        """One timeline entry and its audit row (with `detail` beside the message, for what the
        ledger keeps in full: a signature's evidence, a version of the SOW), both naming the
        `operator` who acted, if one did; the search attributes follow any change."""
        now = workflow.now()
        self.timeline.append(
            TimelineEntry(
                at=now,
                source=source,
                kind=kind,
                message=message,
                milestone_key=milestone_key,
                operator=operator,
            )
        )
        self._add(
            LedgerEvent(
                event_key=f"{workflow.info().workflow_id}:{len(self.timeline)}",
                deal_id=self._spec.deal_id,
                milestone_key=milestone_key,
                kind=kind,
                source=source,
                occurred_at=now,
                detail={
                    "message": message,
                    **({"operator": operator} if operator else {}),
                    **(detail or {}),
                },
            )
        )
        if not self._publish_on_flush:
            self._publish()

    def anomaly(self, message: str, milestone_key: str | None = None) -> None:
        self.anomalies.append(message)
        self.record("system", EventKind.ANOMALY, message, milestone_key)

    def payment(self, payment: PaymentRecord) -> None:
        """Money Stripe confirmed, for the `payments` table."""
        self._add(payment)

    def _add(self, entry: LedgerEvent | DealSnapshot | PaymentRecord) -> None:
        self._outboxes.setdefault(self._owner(), []).append(entry)

    def by_owner(self, owner: Callable[[], Hashable]) -> None:
        """From now on a flush takes only what the flushing coroutine's owner recorded: one
        coroutine's batch never depends on how far another one got (see DealWorkflow)."""
        self._owner = owner

    def has_unflushed(self, owner: Hashable) -> bool:
        """Whether `owner` recorded something not yet handed to the ledger."""
        return bool(self._outboxes.get(owner))

    def _publish(self) -> None:
        """Search attributes and the read-model row, whenever the stage or the money changed."""
        view = self._view()
        shown = (view.stage, view.collected)
        if self._published == shown and not self._terms_changed:
            return
        stage_changed = self._published is None or self._published[0] != view.stage
        self._published = shown
        self._terms_changed = False
        spec = self._spec
        if shown != self._started_as:
            updates = search_attribute_updates(
                view.stage, self._client, spec.total_amount, view.collected
            )
            if self._stage_since and stage_changed:
                updates.append(DEAL_STAGE_SINCE.value_set(workflow.now()))
            workflow.upsert_search_attributes(updates)
        self._started_as = None
        self._add(
            DealSnapshot(
                deal_id=spec.deal_id,
                workflow_id=workflow.info().workflow_id,
                title=spec.title,
                client_email=str(spec.client.email),
                vendor_email=str(spec.vendor.email),
                vendor_id=spec.vendor.vendor_id,
                currency=spec.currency,
                stage=view.stage,
                # Late fees added are owed as the contract is: the pipeline counts them.
                amount_total=spec.total_amount + view.money.late_fees,
                funded=view.money.funded,
                released=view.money.released,
                refunded=view.money.refunded,
                livemode=view.livemode,
                demo=spec.policy.demo,
                updated_at=workflow.now(),
                version=len(self.timeline),
            )
        )

    def _start_attributes(self) -> tuple[DealStage, int] | None:
        """The stage and money the deal's search attributes were started with, if they are all
        this deal's (`starting_search_attributes`)."""
        spec = self._spec
        started = {
            update.key.name: update.value
            for update in search_attribute_updates(
                DealStage.SOW_SENT, self._client, spec.total_amount, 0
            )
        }
        given = {
            pair.key.name: pair.value
            for pair in workflow.info().typed_search_attributes
            if pair.key.name in started
        }
        return (DealStage.SOW_SENT, 0) if given == started else None

    def start(self) -> asyncio.Task[None] | None:
        """Begin writing the ledger: per step for new deals, or the legacy writer coroutine
        (returned, to be awaited after `close()`) for deals recorded before."""
        return None if self._per_step else asyncio.create_task(self.write_ledger())

    def flush(self) -> None:
        """Hand what this step recorded to the ledger, as one activity started now.

        Called by every coroutine of the workflow before it waits and when it ends, so each
        batch and its place among the commands follow from that coroutine's step alone."""
        if not self._per_step:
            return
        if self._publish_on_flush and self._outboxes.get(self._owner()):
            # The coroutine that recorded the change shows it: a flush with nothing of its own
            # (a mail beside the deal that ended) adds neither an upsert nor a batch.
            self._publish()
        entries = self._outboxes.pop(self._owner(), None)
        if not entries:
            return
        snapshots = [e for e in entries if isinstance(e, DealSnapshot)]
        batch = LedgerBatch(
            deal_id=self._spec.deal_id,
            events=[e for e in entries if isinstance(e, LedgerEvent)],
            payments=[e for e in entries if isinstance(e, PaymentRecord)],
            snapshot=snapshots[-1] if snapshots else None,
        )
        written = calls.start_ledger_batch(batch)
        written.add_done_callback(self._on_batch_written)
        self._batches.append(written)

    def _on_batch_written(self, written: asyncio.Task[LedgerWriteResult]) -> None:
        """Quarantined rows and a batch given up on are anomalies of the deal (in its status and
        timeline only: writing them to the ledger could fail the same way)."""
        error = written.exception()
        if isinstance(error, ActivityError):
            self._workflow_anomaly(f"Ledger batch not written: {failure(error)}")
        elif error is None:
            for row in written.result().quarantined:
                self._workflow_anomaly(
                    f"Ledger {row.entry} {row.key} quarantined (Postgres refused it: {row.error})"
                )

    @property
    def published(self) -> tuple[DealStage, int] | None:
        """The stage and collected money the search attributes and the read model show."""
        return self._published

    def resume(
        self,
        timeline: list[TimelineEntry],
        anomalies: list[str],
        published: tuple[DealStage, int] | None,
    ) -> None:
        """Take up the journal of the deal's previous run (it continued as new): its entries
        number on, and what it published is not published again."""
        self.timeline = timeline
        self.anomalies = anomalies
        self._published = published
        self._started_as = None

    def settled(self) -> bool:
        """Whether everything recorded was handed to the ledger and every batch is written."""
        return not any(self._outboxes.values()) and all(b.done() for b in self._batches)

    def writing(self) -> list[asyncio.Task[LedgerWriteResult]]:
        """The ledger batches not written yet."""
        return [batch for batch in self._batches if not batch.done()]

    async def written(self) -> None:
        """Wait until every ledger batch started so far is written (or given up on)."""
        if pending := self.writing():
            await asyncio.gather(*pending, return_exceptions=True)

    async def drain(self, legacy_writer: asyncio.Task[None] | None) -> None:
        """Wait until every ledger write of the deal is done."""
        self.flush()
        self._closed = True
        if legacy_writer is not None:
            await legacy_writer
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)

    def _workflow_anomaly(self, message: str) -> None:
        self.anomalies.append(message)
        self.timeline.append(
            TimelineEntry(
                at=workflow.now(), source="system", kind=EventKind.ANOMALY, message=message
            )
        )

    async def write_ledger(self) -> None:
        """Legacy: write the outbox entry by entry until `close()` and the outbox is empty."""
        outbox = self._outboxes.setdefault(None, [])
        while True:
            await workflow.wait_condition(lambda: bool(outbox) or self._closed)
            if not outbox:
                return
            entry = outbox.pop(0)
            try:
                await calls.write_ledger(entry)
            except ActivityError as error:
                # Kept in the workflow only: re-queuing it could fail the same way forever.
                self._workflow_anomaly(
                    f"Ledger write failed ({type(entry).__name__}): {failure(error)}"
                )


def failure(error: ActivityError) -> str:
    """Why an activity failed for good, for people."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'error'}: {cause.message}"
    return str(cause or error)
