"""Recorded deal histories replay against today's DealWorkflow: a change that would break
running deals (non-determinism) fails here, before it is deployed. Guard changes with
`workflow.patched`."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.recorded import HISTORIES
from workflows.deal import DealWorkflow

HISTORY_FILES = sorted(HISTORIES.glob("*.json"))


def test_histories_are_recorded() -> None:
    assert HISTORY_FILES, "tests/histories/ holds no recorded history to replay"


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[p.stem for p in HISTORY_FILES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[DealWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
