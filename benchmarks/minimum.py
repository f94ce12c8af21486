"""The least Temporal actions a deal needs for what it did: the model the actions benchmark holds
each deal's count against.

The deal's history says what it had to do in the world: which mails it sent, the receipts, the
hand-offs to the vendor, the Stripe calls that create links or move money, the payments (each
rise of `DealCollectedCents`), the stages it showed (the `DealStage` each workflow task left).
Of each, the least is:

- the workflow start, and every update a person sent;
- one signal per payment (one webhook relayed, not one per Stripe event);
- one activity per effect: each mail, each receipt, each hand-off, each Stripe call that creates
  a link or moves money, one verifying read of Stripe per payment, and an expiry only for a
  session that was never paid;
- one ledger write per workflow task that changed the deal: its start, each update, each
  payment confirmed, each link or money movement Stripe answered;
- one upsert per stage the deal visibly passed through (a stage a workflow task left behind);
- one timer per wait with a deadline: the signature, and per milestone the funding, the work
  and the review;
- no markers: a patch is what a change costs while old deals run, not what a deal needs.

This holds for straight deals (signed, then each milestone paid, delivered and approved).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from benchmarks.history import Actions, billable_actions
from dealflow.contract import DEAL_COLLECTED_CENTS, DEAL_STAGE

#: Stripe calls that create a payment link or move money.
MONEY_AND_LINKS = (
    "create_checkout_session",
    "capture_payment",
    "cancel_authorization",
    "refund_payment",
    "transfer_to_vendor",
)
VERIFYING_READS = ("retrieve_payment_intent", "retrieve_checkout_session")
HAND_OFFS = ("dispatch_work_order", "deliver_artifacts")
LEDGER = "write_ledger"


def _value(payload: Payload) -> object:
    return json.loads(payload.data)


def _upserted(event: HistoryEvent, name: str) -> object | None:
    fields = (
        event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    )
    return _value(fields[name]) if name in fields else None


def payments(events: list[HistoryEvent]) -> int:
    """How many times the money collected went up: each is one payment confirmed."""
    collected, rises = 0, 0
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            value = _upserted(event, DEAL_COLLECTED_CENTS.name)
            if isinstance(value, int):
                rises += value > collected
                collected = value
    return rises


def visible_stages(events: list[HistoryEvent]) -> int:
    """Stages a workflow task left the deal in that differ from where the task before left it."""
    started = events[0].workflow_execution_started_event_attributes.search_attributes.indexed_fields
    shown = _value(started[DEAL_STAGE.name]) if DEAL_STAGE.name in started else None
    last_in_task: dict[int, object] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            stage = _upserted(event, DEAL_STAGE.name)
            if stage is not None:
                last_in_task[
                    event.upsert_workflow_search_attributes_event_attributes.workflow_task_completed_event_id
                ] = stage
    changes = 0
    for _task, stage in sorted(last_in_task.items()):
        changes += stage != shown
        shown = stage
    return changes


@dataclass(frozen=True)
class Minimum:
    by_kind: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def minimum_actions(events: list[HistoryEvent], actual: Actions | None = None) -> Minimum:
    actual = actual or billable_actions(events)
    activity = actual.by_kind
    paid = payments(events)
    updates = actual.of("update")
    money_calls = sum(activity[f"activity:{name}"] for name in MONEY_AND_LINKS)
    sessions = activity["activity:create_checkout_session"]
    return Minimum(
        Counter(
            {
                "workflow started": 1,
                "updates people sent": updates,
                "signals, one per payment": paid,
                "activity: mails": activity["activity:send_email"],
                "activity: receipts": activity["activity:issue_receipt"],
                "activity: hand-offs": sum(activity[f"activity:{name}"] for name in HAND_OFFS),
                "activity: Stripe links and money": money_calls,
                "activity: expiry of a session never paid": max(0, sessions - paid),
                "activity: verifying read, one per payment": paid,
                "activity: ledger writes, one per change": 1 + updates + paid + money_calls,
                "upserts, one per visible stage": visible_stages(events),
                "timers, one per wait with a deadline": 1 + 3 * _milestones(events),
            }
        )
    )


def _milestones(events: list[HistoryEvent]) -> int:
    """The deal's milestone count, from its spec (the workflow's input)."""
    [spec] = events[0].workflow_execution_started_event_attributes.input.payloads
    return len(json.loads(spec.data)["milestones"])
