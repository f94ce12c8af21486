"""Histories that earlier builds recorded and today's DealWorkflow cannot replay, each explained.

`chaos-runs/` holds the 17 deals of issue 9's two chaos runs (DealWorkflow at 7f29bc2, worker
SIGKILLed while updates arrived; gzipped); `regression_update_after_worker_kill.json` is the same
shape recorded on purpose by `test_crash.py`'s first outage on that build;
`payment_read_after_worker_kill.json.gz` is one of today's code (its README says how). The old ledger writer
coroutine raced the deal when sdk-core folded a command-less workflow task into an update's
activation (see workflows/journal.py): the order of the recorded commands depended on that fold,
which a replay does not repeat, so no code can replay them as recorded (test_crash.py and
test_repair.py show today's deals, in the same outages, do replay). Each fails at the event
its README names, after a completed workflow task, which is what `dealflow repair` resets to.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from repair.divergence import choose_reset_point, find_divergence
from tests.recorded import HISTORIES

FOLDER = HISTORIES / "nondeterministic"
HISTORY_FILES = sorted([*FOLDER.glob("*.json*"), *(FOLDER / "chaos-runs").glob("*.json.gz")])
#: Where each diverges: the update-after-kill shape at event 33, except two of the second run,
#: where later in the deal an `approve_milestone` update and a mail's result came in one
#: activation after a kill, and the old writer's command and the update's answer swapped places
#: on replay (the shape one-command-owner removes).
#: The third, today's code's (see the README): live, a payment's in-task read resolved with
#: activities' results that came after it; the SDK's error names no event (it meets the
#: mismatch at 131), the cut histories of `repair.divergence` find the task that departed (120,
#: its marker 121).
LATER_DIVERGENCE = {
    "history-chaos-ab97-01": 334,
    "history-chaos-ab97-10": 300,
    "payment_read_after_worker_kill": 121,
}


def load(path: Path) -> WorkflowHistory:
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return WorkflowHistory.from_json(path.name.split(".")[0], text)


def test_all_seventeen_chaos_deals_are_here() -> None:
    assert len([p for p in HISTORY_FILES if p.parent.name == "chaos-runs"]) == 17


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: p.name.split(".")[0])
async def test_it_diverges_where_explained_and_can_be_reset_before_that(path: Path) -> None:
    history = load(path)
    divergence = await find_divergence(history)

    assert divergence is not None, "replays now: move it to tests/histories/"
    expected = LATER_DIVERGENCE.get(path.name.split(".")[0], 33)
    assert divergence.event_id == expected, divergence.error
    assert choose_reset_point(history.events, divergence) < divergence.event_id
