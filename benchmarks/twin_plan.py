"""The bare twin's plan, derived from a real deal's history: per workflow task, what it waited
for and the commands it gave, so a plain workflow of no-op activities does the same Temporal work.

A task of the plan waits until everything its real counterpart had seen when it started has
happened in the twin too (so many signals, these activities finished, these timers fired) and,
if it took an update, for that update; then it starts the same activities (by name), upserts as
many times, starts and cancels the same timers. Tasks that gave no command are left out: their
wake-ups (an activity result, a signal) come to the twin by themselves. Local activities are
run as no-ops too, in the same task; other markers are not copied (the twin is a plain
workflow), the upserts `workflow.patched` made are (they are upserts).

The triggers are what the deal got from outside, in order: the updates people sent and the
signals the bridge relayed. The twin's driver sends the same ones; an update answers once the
twin is ready for the next trigger, as a person acts only once the deal shows it is their turn.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from benchmarks.history import workflow_tasks


class TwinTask(BaseModel):
    #: The update this task runs in (its handler performs it), if it took one.
    update: str | None = None
    signals_before: int = 0
    #: Numbers (in the order the plan starts them) of the activities and timers that must be done.
    activities_before: list[int] = []
    timers_before: list[int] = []
    activities: list[str] = []
    #: Local activities, run in the task before it gives its other commands.
    local_activities: list[str] = []
    upserts: int = 0
    timers: list[float] = []
    cancel_timers: list[int] = []
    #: For an update: the task of the next trigger, which must be ready before the update answers.
    answer_when_ready: int | None = None


class Trigger(BaseModel):
    kind: Literal["update", "signal"]
    name: str
    #: The plan task this trigger lets go (None: a signal that started no work).
    task: int | None


class TwinPlan(BaseModel):
    tasks: list[TwinTask]
    triggers: list[Trigger]

    def count(self, what: Literal["activities", "local_activities", "upserts", "timers"]) -> int:
        if what == "upserts":
            return sum(task.upserts for task in self.tasks)
        return sum(len(getattr(task, what)) for task in self.tasks)

    def triggers_of(self, kind: Literal["update", "signal"]) -> int:
        return sum(1 for trigger in self.triggers if trigger.kind == kind)


def _triggers(events: Iterable[HistoryEvent]) -> list[tuple[Literal["update", "signal"], str]]:
    found: list[tuple[Literal["update", "signal"], str]] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            found.append(("signal", event.workflow_execution_signaled_event_attributes.signal_name))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            found.append(("update", request.input.name))
    return found


def twin_plan(events: list[HistoryEvent]) -> TwinPlan:
    activity_numbers: dict[int, int] = {}
    timer_numbers: dict[str, int] = {}
    tasks: list[TwinTask] = []
    for task in workflow_tasks(events):
        if task.update is None and not (
            task.activities
            or task.local_activities
            or task.upserts
            or task.timers
            or task.cancelled_timers
        ):
            continue
        for scheduled_id, _ in task.activities:
            activity_numbers[scheduled_id] = len(activity_numbers)
        for timer_id, _ in task.timers:
            timer_numbers[timer_id] = len(timer_numbers)
        tasks.append(
            TwinTask(
                update=task.update,
                signals_before=task.signals_before,
                activities_before=sorted(
                    activity_numbers[i]
                    for i in task.activities_done_before
                    if i in activity_numbers
                ),
                timers_before=sorted(
                    timer_numbers[i] for i in task.timers_fired_before if i in timer_numbers
                ),
                activities=[name for _, name in task.activities],
                local_activities=task.local_activities,
                upserts=len(task.upserts),
                timers=[seconds for _, seconds in task.timers],
                cancel_timers=[timer_numbers[i] for i in task.cancelled_timers],
            )
        )
    triggers: list[Trigger] = []
    signals = 0
    unclaimed_updates = [number for number, task in enumerate(tasks) if task.update is not None]
    for kind, name in _triggers(events):
        if kind == "signal":
            signals += 1
            woken = next(
                (n for n, task in enumerate(tasks) if task.signals_before >= signals), None
            )
        else:
            woken = next(n for n in unclaimed_updates if tasks[n].update == name)
            unclaimed_updates.remove(woken)
        triggers.append(Trigger(kind=kind, name=name, task=woken))
    for trigger, following in itertools.pairwise(triggers):
        if trigger.kind == "update" and trigger.task is not None:
            tasks[trigger.task].answer_when_ready = following.task
    return TwinPlan(tasks=tasks, triggers=triggers)
