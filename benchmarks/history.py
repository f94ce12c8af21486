"""A deal's history read as Temporal works it: the events by type, the billable actions by kind,
and the workflow tasks one by one (what each saw arrive, and the commands it gave).

Temporal Cloud bills, of what a history shows: the workflow start, each activity attempt, each
local activity (its marker, `local activity:<type>`), each signal, each accepted update, each
timer started and each search-attribute upsert (also the ones `workflow.patched` makes, of
`TemporalChangeVersion`). The other markers are counted apart, and left out of the total: these
are patch markers, which the server meters as one action per workflow task
that records any (`command_BatchMarkers`), not per marker. Queries and activity heartbeats are
billed too but leave no event; they come from the server's own `action` counter.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.history.v1 import HistoryEvent

#: The search attribute the Python SDK upserts for `workflow.patched`.
PATCH_ATTRIBUTE = "TemporalChangeVersion"
LOCAL_ACTIVITY_MARKER = "core_local_activity"

_ACTIVITY_ENDS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}


def local_activity_type(marker: HistoryEvent) -> str:
    """The activity a local-activity marker recorded (sdk-core's marker data names it)."""
    (data,) = marker.marker_recorded_event_attributes.details["data"].payloads
    return json.loads(data.data)["activity_type"]


def event_name(event: HistoryEvent) -> str:
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def event_counts(events: Iterable[HistoryEvent]) -> Counter[str]:
    return Counter(event_name(event) for event in events)


def missed_sticky_worker(events: Iterable[HistoryEvent]) -> int:
    """Workflow tasks no worker took from the sticky queue within its timeout: each went to the
    normal queue, where the worker that takes it is sent the whole history."""
    return sum(
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
        and event.workflow_task_timed_out_event_attributes.timeout_type
        == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
        for event in events
    )


@dataclass
class WorkflowTask:
    """One completed workflow task: what had arrived when it started, and the commands it gave."""

    #: Signals, finished activities (by their scheduled event id) and fired timers (by timer
    #: id) the history had when the task started; counted from the start of the workflow.
    signals_before: int
    activities_done_before: frozenset[int]
    timers_fired_before: frozenset[str]
    #: The update this task accepted, if one.
    update: str | None = None
    #: (scheduled event id, activity type) of each activity the task scheduled.
    activities: list[tuple[int, str]] = field(default_factory=list)
    #: The attribute names of each upsert.
    upserts: list[frozenset[str]] = field(default_factory=list)
    #: (timer id, seconds) of each timer started, and the ids of those cancelled.
    timers: list[tuple[str, float]] = field(default_factory=list)
    cancelled_timers: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    #: The activity type of each local activity the task ran (one marker each, also in `markers`).
    local_activities: list[str] = field(default_factory=list)
    completes_workflow: bool = False

    @property
    def commands(self) -> int:
        return (
            len(self.activities)
            + len(self.upserts)
            + len(self.timers)
            + len(self.cancelled_timers)
            + len(self.markers)
            + int(self.completes_workflow)
        )


def workflow_tasks(events: Iterable[HistoryEvent]) -> list[WorkflowTask]:
    """Every completed workflow task in order, with what woke it and what it did."""
    signals = 0
    activities_done: set[int] = set()
    timers_fired: set[str] = set()
    at_start: dict[int, tuple[int, frozenset[int], frozenset[str]]] = {}
    tasks: dict[int, WorkflowTask] = {}
    last: WorkflowTask | None = None
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            at_start[event.event_id] = (
                signals,
                frozenset(activities_done),
                frozenset(timers_fired),
            )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            before = at_start[event.workflow_task_completed_event_attributes.started_event_id]
            last = tasks[event.event_id] = WorkflowTask(*before)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signals += 1
        elif kind in _ACTIVITY_ENDS:
            activities_done.add(getattr(event, _ACTIVITY_ENDS[kind]).scheduled_event_id)
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            timers_fired.add(event.timer_fired_event_attributes.timer_id)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED and last is not None:
            last.update = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            task = tasks[attributes.workflow_task_completed_event_id]
            task.activities.append((event.event_id, attributes.activity_type.name))
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attributes = event.upsert_workflow_search_attributes_event_attributes
            names = frozenset(attributes.search_attributes.indexed_fields)
            tasks[attributes.workflow_task_completed_event_id].upserts.append(names)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            attributes = event.timer_started_event_attributes
            seconds = attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
            tasks[attributes.workflow_task_completed_event_id].timers.append(
                (attributes.timer_id, seconds)
            )
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            attributes = event.timer_canceled_event_attributes
            tasks[attributes.workflow_task_completed_event_id].cancelled_timers.append(
                attributes.timer_id
            )
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            attributes = event.marker_recorded_event_attributes
            task = tasks[attributes.workflow_task_completed_event_id]
            task.markers.append(attributes.marker_name)
            if attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                task.local_activities.append(local_activity_type(event))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            tasks[
                event.workflow_execution_completed_event_attributes.workflow_task_completed_event_id
            ].completes_workflow = True
    return list(tasks.values())


@dataclass(frozen=True)
class Actions:
    """Billable actions of one history, by kind (`activity:write_ledger`, `signal:stripe_event`,
    `update:sign_sow`, `timer`, `upsert`, `upsert:patch`, `workflow started`), and its markers."""

    by_kind: Counter[str]
    markers: Counter[str]
    #: Workflow tasks that recorded at least one marker (what the server meters).
    marker_tasks: int

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def of(self, prefix: str) -> int:
        return sum(
            n for kind, n in self.by_kind.items() if kind == prefix or kind.startswith(prefix + ":")
        )


def billable_actions(events: list[HistoryEvent]) -> Actions:
    by_kind: Counter[str] = Counter()
    markers: Counter[str] = Counter()
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            by_kind["workflow started"] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            by_kind[
                f"activity:{event.activity_task_scheduled_event_attributes.activity_type.name}"
            ] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retries = event.activity_task_started_event_attributes.attempt - 1
            if retries > 0:
                by_kind["activity retry"] += retries
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            by_kind[f"signal:{event.workflow_execution_signaled_event_attributes.signal_name}"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            by_kind[f"update:{name}"] += 1
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            by_kind["timer"] += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = set(
                event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            )
            by_kind["upsert:patch" if fields == {PATCH_ATTRIBUTE} else "upsert"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            by_kind["upsert:memo"] += 1
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            name = event.marker_recorded_event_attributes.marker_name
            if name == LOCAL_ACTIVITY_MARKER:
                by_kind[f"local activity:{local_activity_type(event)}"] += 1
            else:
                markers[name] += 1
    marker_tasks = sum(
        1 for task in workflow_tasks(events) if set(task.markers) - {LOCAL_ACTIVITY_MARKER}
    )
    return Actions(by_kind, markers, marker_tasks)
