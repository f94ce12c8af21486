"""The deal's durable clocks: a phase names its deadlines, and one wait loop sleeps until the
earliest, fires it, and asks again, until the phase is over or the deal stops.

Each wait is a `workflow.wait_condition` with a timeout, so a clock survives restarts and the
time-skipping test server jumps over it. The deadline being waited for is what the status query
shows as the deal's next deadline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.messages import Deadline


@dataclass(frozen=True)
class Timer:
    """A durable deadline of the current phase and what the workflow does when it comes."""

    at: datetime
    action: str
    fire: Callable[[], Awaitable[None]]


class Timers:
    """Owns the deal's next deadline and the loop that waits for it."""

    def __init__(self, stopped: Callable[[], bool], before_waiting: Callable[[], None]) -> None:
        self._stopped = stopped
        #: Hands what the step recorded to the ledger before the workflow sleeps.
        self._before_waiting = before_waiting
        self.deadline: Deadline | None = None

    def clear(self) -> None:
        """The deal has ended: nothing is waited for any more."""
        self.deadline = None

    async def run(self, waiting: Callable[[], bool], timers: Callable[[], list[Timer]]) -> None:
        """While `waiting()` holds and nobody stopped the deal, fire the earliest timer when due."""
        while waiting() and not self._stopped():
            timer = await self._next(waiting, timers())
            if timer is not None:
                self.deadline = None
                await timer.fire()

    async def _next(self, waiting: Callable[[], bool], timers: list[Timer]) -> Timer | None:
        """Sleep until the earliest timer (returned) or until the wait is over (None)."""
        timer = min(timers, key=lambda t: t.at, default=None)
        self.deadline = Deadline(at=timer.at, action=timer.action) if timer else None
        done = lambda: not waiting() or self._stopped()
        self._before_waiting()
        if timer is None:
            await workflow.wait_condition(done)
            return None
        delay = timer.at - workflow.now()
        if delay <= timedelta(0):
            return None if done() else timer
        try:
            await workflow.wait_condition(done, timeout=delay, timeout_summary=timer.action)
        except TimeoutError:
            return timer
        return None
