"""The recorded deal history the benchmark pieces are checked on: one that never changes (`v4_`
keeps its name; today's `end_to_end.json` has the same commands, and may be recorded anew)."""

from __future__ import annotations

from pathlib import Path

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from tests.recorded import HISTORIES

#: Two milestones, each paid (two webhooks relayed), delivered and approved.
TWO_MILESTONES = HISTORIES / "v4_end_to_end.json"
#: The end-to-end deal of the release that read each payment in its workflow task (a local activity).
READ_IN_TASK = HISTORIES / "v11_end_to_end.json"


def recorded_events(path: Path = TWO_MILESTONES) -> list[HistoryEvent]:
    return list(WorkflowHistory.from_json("recorded", path.read_text()).events)
