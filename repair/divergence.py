"""Where a deal's history stops replaying with today's DealWorkflow: the first event it does not
reproduce, and the workflow task to reset to before it.

The SDK names that event in most nondeterminism errors ("HistoryEvent(id: 33, TimerCanceled)").
Some name none (a scheduled activity whose type differs from the command's); then the history is
replayed cut short at workflow task starts, where a replay checks every earlier task's commands
and runs the last one as new: the first cut that fails ends just after a task whose commands
differ (a replay's failure only grows with the history, so a binary search finds it), and the
replay departed from the history there or one task before (see
`_first_command_of_the_task_that_differs`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from dealflow.workflow_runner import SHARED_IMPORTS, sandboxed_runner
from workflows.deal import DealWorkflow

#: How the SDK names the event a replay disagrees with: "HistoryEvent(id: 33, TimerCanceled)".
_EVENT_IN_ERROR = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
#: The SDK's own sentence inside the activation failure it wraps it in.
_SDK_MESSAGE = re.compile(r"\[TMPRL\d+\][^\"]*")
#: The code of the SDK's nondeterminism errors, whichever exception carries them.
_NONDETERMINISM = "[TMPRL1100]"


@functools.cache
def _quiet_runtime() -> Runtime:
    """Core without its warning for each failed task: the replays here fail on purpose (each cut
    past the divergence), and the divergence is reported once, by the caller."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )


class ReplayBroken(RuntimeError):
    """The history fails to replay for another reason than nondeterminism: a bug in the code,
    which a reset would only run into again."""


@dataclass(frozen=True)
class Divergence:
    """The first history event today's code does not reproduce, and the replay's error."""

    event_id: int
    event_name: str
    error: str


async def find_divergence(
    history: WorkflowHistory, converter: DataConverter = pydantic_data_converter
) -> Divergence | None:
    """Replay with today's DealWorkflow and `converter` (the client's, which decrypts the
    payloads the worker encrypted); None when it replays, ReplayBroken when it fails otherwise
    than by nondeterminism."""
    replayer = Replayer(
        workflows=[DealWorkflow],
        data_converter=converter,
        workflow_runner=sandboxed_runner(converter, SHARED_IMPORTS),
        runtime=_quiet_runtime(),
    )
    failure = await _replay_failure(replayer, history)
    if failure is None:
        return None
    text = str(failure)
    if _NONDETERMINISM not in text:
        raise ReplayBroken(f"the history fails to replay, and not by nondeterminism: {failure}")
    message = _SDK_MESSAGE.search(text)
    error = message[0] if message else text
    if found := _EVENT_IN_ERROR.search(text):
        return Divergence(event_id=int(found[1]), event_name=found[2], error=error)
    event = await _first_command_of_the_task_that_differs(replayer, history)
    return Divergence(event_id=event.event_id, event_name=_event_name(event), error=error)


def choose_reset_point(events: Iterable[HistoryEvent], divergence: Divergence) -> int | None:
    """The last WORKFLOW_TASK_COMPLETED before the divergent event: every command before it
    replays, and resetting there discards that task's commands, the first ones that differ.
    None when no task completed before it."""
    completed = [
        event.event_id
        for event in events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        and event.event_id < divergence.event_id
    ]
    return completed[-1] if completed else None


async def _replay_failure(replayer: Replayer, history: WorkflowHistory) -> Exception | None:
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure


async def _first_command_of_the_task_that_differs(
    replayer: Replayer, history: WorkflowHistory
) -> HistoryEvent:
    """The first command event of the task a replay first departs from (the history fails to
    replay as a whole).

    The first cut that fails ends just after the task whose recorded commands a replay
    contradicts. A replay may have departed one task earlier without failing there: it issued
    more commands than that task recorded, and they met the next task's (the SDK holds commands
    a task did not record for the events after it). So the departure is taken to be the task
    before the contradicted one (or before that, past tasks that recorded no command): resetting
    there runs both again, and `dealflow repair` checks the new run replays."""
    events = list(history.events)
    starts = [e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED]
    low, high = 0, len(starts)  # the first cut that fails: starts[low], or the whole history
    while low < high:
        middle = (low + high) // 2
        cut = WorkflowHistory(history.workflow_id, [e for e in events if e.event_id <= starts[middle]])
        if await _replay_failure(replayer, cut) is None:
            low = middle + 1
        else:
            high = middle
    end = starts[low] if low < len(starts) else events[-1].event_id + 1
    tasks = [
        e.event_id for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < end
    ]  # fmt: skip
    departed = max(len(tasks) - 2, 0)
    while departed > 0 and not _commands_of(events, tasks[departed]):
        departed -= 1
    return next(e for e in events if e.event_id > tasks[departed])


def _commands_of(events: list[HistoryEvent], task_completed: int) -> list[HistoryEvent]:
    """The events the workflow task completed at `task_completed` recorded as its commands."""
    commands = []
    for event in events:
        attributes = getattr(event, event.WhichOneof("attributes") or "", None)
        field = attributes and attributes.DESCRIPTOR.fields_by_name.get("workflow_task_completed_event_id")
        if field and getattr(attributes, field.name) == task_completed:
            commands.append(event)
    return commands


def _event_name(event: HistoryEvent) -> str:
    """ "ActivityTaskScheduled", as the SDK names events in its errors."""
    words = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_")
    return "".join(word.capitalize() for word in words)
