"""Recorded deal histories replay against today's DealWorkflow: a change that would break
running deals (non-determinism) fails here, before it is deployed. Guard changes with
`workflow.patched`.

A deal's commands must also follow from its history alone, not from the order in which asyncio
wakes coroutines that one message made ready: that order is not in the history, and it changed
between CPython 3.11 and 3.12 (`asyncio.wait_for` with a timeout wakes its caller one
event-loop turn later on 3.11). Histories of today's code replay under both orders; those of the
old ledger writer coroutine (`v1_*`) do not, which is the bug `ledger-per-step` removed.
"""

from __future__ import annotations

import asyncio
from asyncio import timeouts
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from dealflow.codec import new_payload_key
from dealflow.settings import Settings
from dealflow.temporal import data_converter
from tests.deal_harness import force_payment_read
from tests.recorded import HISTORIES
from workflows.deal import DealWorkflow

HISTORY_FILES = sorted(HISTORIES.glob("*.json"))
RACING_LEDGER_WRITER = [p for p in HISTORY_FILES if p.name.startswith("v1_")]


def test_histories_are_recorded() -> None:
    assert HISTORY_FILES, "tests/histories/ holds no recorded history to replay"


#: What a worker with DEALFLOW_PAYLOAD_KEYS decodes with: it reads the histories recorded in
#: clear (before encryption was turned on) as they are.
ENCRYPTING = data_converter(Settings(_env_file=None, DEALFLOW_PAYLOAD_KEYS=new_payload_key()))


async def replay(path: Path, converter: DataConverter = pydantic_data_converter) -> Exception | None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[DealWorkflow], data_converter=converter)
    return (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[p.stem for p in HISTORY_FILES])
async def test_history_replays(path: Path) -> None:
    assert await replay(path) is None


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[p.stem for p in HISTORY_FILES])
async def test_history_replays_on_a_worker_that_encrypts(path: Path) -> None:
    assert await replay(path, ENCRYPTING) is None


async def _wait_for_in_one_turn(awaitable: Awaitable[Any], timeout: float | None) -> Any:
    """CPython 3.12's `asyncio.wait_for`: the caller wakes in the turn its future completes."""
    async with timeouts.timeout(timeout):
        return await awaitable


@pytest.fixture
def other_wake_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio, "wait_for", _wait_for_in_one_turn)


@pytest.mark.parametrize(
    "path",
    [p for p in HISTORY_FILES if p not in RACING_LEDGER_WRITER],
    ids=lambda p: p.stem,
)
async def test_history_replays_whatever_order_coroutines_wake_in(
    path: Path, other_wake_order: None
) -> None:
    assert await replay(path) is None


@pytest.mark.parametrize("path", RACING_LEDGER_WRITER, ids=lambda p: p.stem)
async def test_the_old_ledger_writer_raced_the_deal(path: Path, other_wake_order: None) -> None:
    """The shape of the worker-kill regressions: woken by one message, the two coroutines'
    commands came out in another order."""
    failure = await replay(path)
    assert failure is not None and "Nondeterminism" in str(failure)


#: Recorded before PAYMENTS_READ_IN_TASK (the read an activity of its own), with it (the read a
#: local activity, in the task its hint woke), and since PAYMENTS_READ_RECORDED (an activity again).
BEFORE_IN_TASK, IN_TASK, RECORDED = (
    HISTORIES / "v10_end_to_end.json",
    HISTORIES / "v11_end_to_end.json",
    HISTORIES / "end_to_end.json",
)


@pytest.mark.parametrize(
    ("path", "forced"),
    [(BEFORE_IN_TASK, True), (IN_TASK, False), (RECORDED, True)],
    ids=["oldest-deal-read-in-task", "in-task-deal-read-as-activity", "newest-deal-read-in-task"],
)
async def test_each_deal_keeps_the_payment_read_it_started_with(
    path: Path, forced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The patches decide: each recorded deal replays only with the read its release made."""
    assert await replay(path) is None
    force_payment_read(monkeypatch, in_task=forced)
    failure = await replay(path)
    assert failure is not None and "Nondeterminism" in str(failure)
