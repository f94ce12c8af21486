"""activities/heartbeat.py: a slow activity heartbeats while it runs, except as a local
activity (a payment's read inside the deal's workflow task), whose heartbeats sdk-core refuses."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from temporalio.testing import ActivityEnvironment

import activities.heartbeat
from activities.heartbeat import heartbeating


@heartbeating
async def slow_call() -> str:
    await asyncio.sleep(0.2)
    return "answered"


@pytest.mark.parametrize("is_local", [False, True], ids=["activity", "local-activity"])
async def test_a_slow_call_heartbeats_unless_it_runs_in_the_workflow_task(
    is_local: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(activities.heartbeat, "HEARTBEAT_INTERVAL", timedelta(milliseconds=20))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, is_local=is_local)
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    assert await env.run(slow_call) == "answered"

    # 200 ms at a beat every 20 ms: about ten, allowing for a slow machine; none in the task.
    assert (beats == []) if is_local else (len(beats) >= 3)
