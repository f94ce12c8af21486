"""Heartbeats for activities that can run longer than a few seconds.

A heartbeat says only "this worker is alive", which is what the heartbeat timeout needs: a
crashed worker is noticed within seconds, while a call that is slow but alive is bounded by its
clients' timeouts and the start-to-close timeout (dealflow/activity_timeouts.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity

from dealflow.activity_timeouts import HEARTBEAT_INTERVAL

P = ParamSpec("P")
R = TypeVar("R")


async def _beat_forever(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        activity.heartbeat()


def heartbeating(run: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Make the async activity `run` heartbeat every HEARTBEAT_INTERVAL while it runs.

    The first heartbeat comes after one interval, so quick calls send none at all. Run as a
    local activity (a payment's read, inside the deal's workflow task) it sends none: the
    workflow task is the liveness there, and sdk-core refuses a local activity's heartbeat with
    a warning each time.
    """

    @functools.wraps(run)
    async def with_heartbeats(*args: P.args, **kwargs: P.kwargs) -> R:
        if activity.info().is_local:
            return await run(*args, **kwargs)
        beats = asyncio.create_task(_beat_forever(HEARTBEAT_INTERVAL.total_seconds()))
        try:
            return await run(*args, **kwargs)
        finally:
            beats.cancel()

    return with_heartbeats
