"""Watching a demo deal through Temporal queries, so its people act when it is their turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from dealflow.contract import STATUS, SUMMARY
from dealflow.messages import (
    TERMINAL_STAGES,
    DealStage,
    DealStatus,
    DealSummary,
    MilestoneState,
    MilestoneStatus,
    TimelineEntry,
)
from dealflow.models import workflow_id_for
from demo.http import DemoStepFailed

#: How long one wait for a deal to move may take before the demo calls the deal stuck.
STEP_TIMEOUT = 90.0
POLL_INTERVAL = 0.5


class DealWatch:
    """The deal's small `summary` query, polled; the people wait on it, the live display shows
    it. Once the deal has ended its whole `status` is taken, once, for the report."""

    def __init__(self, temporal: Client, deal_id: str, *, timeout: float = STEP_TIMEOUT) -> None:
        self.handle = temporal.get_workflow_handle(workflow_id_for(deal_id))
        #: How long one wait for the deal to move may take (longer under `dealflow chaos`).
        self.timeout = timeout
        self.summary: DealSummary | None = None
        self.status: DealStatus | None = None
        self._changed = asyncio.Condition()

    async def poll_forever(self) -> None:
        while self.status is None:
            try:
                summary = await self.handle.query(SUMMARY, result_type=DealSummary)
                if summary.stage in TERMINAL_STAGES:
                    self.status = await self.handle.query(STATUS, result_type=DealStatus)
            except (RPCError, WorkflowQueryFailedError):
                summary = None  # not started yet, or the worker is busy: ask again shortly
            if summary is not None:
                async with self._changed:
                    self.summary = summary
                    self._changed.notify_all()
            if self.status is None:
                await asyncio.sleep(POLL_INTERVAL)

    async def until(
        self, what: str, ready: Callable[[DealSummary], bool], timeout: float | None = None
    ) -> DealSummary:
        """The first summary that is `ready`; fails at once if the deal ends without getting there."""
        timeout = self.timeout if timeout is None else timeout

        def settled() -> bool:
            return self.summary is not None and (ready(self.summary) or self.summary.stage in TERMINAL_STAGES)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(settled), timeout)
            except TimeoutError as error:
                stage = self.summary.stage if self.summary else "not started"
                raise DemoStepFailed(f"waited {timeout:.0f}s for {what}; the deal is {stage}") from error
        assert self.summary is not None
        if not ready(self.summary):
            raise DemoStepFailed(f"the deal ended {self.summary.stage} while waiting for {what}")
        return self.summary

    async def status_now(self, what: str) -> DealStatus:
        """The whole deal as it stands now (asked again while the worker cannot answer)."""
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    try:
                        return await self.handle.query(STATUS, result_type=DealStatus)
                    except (RPCError, WorkflowQueryFailedError):
                        await asyncio.sleep(POLL_INTERVAL)
        except TimeoutError as error:
            raise DemoStepFailed(f"waited {self.timeout:.0f}s for the deal's status ({what})") from error

    async def milestone_status(self, key: str) -> MilestoneStatus:
        status = await self.status_now(f"milestone {key}")
        return next(m for m in status.milestones if m.key == key)

    async def status_until(self, what: str, ready: Callable[[DealStatus], bool]) -> DealStatus:
        """The deal's whole status once it is `ready` (what the small summary does not show)."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            status = await self.status_now(what)
            if ready(status):
                return status
            if status.stage in TERMINAL_STAGES:
                raise DemoStepFailed(f"the deal ended {status.stage} while waiting for {what}")
            if asyncio.get_running_loop().time() > deadline:
                raise DemoStepFailed(f"waited {self.timeout:.0f}s for {what}; the deal is {status.stage}")
            await asyncio.sleep(POLL_INTERVAL)

    async def timeline_entry(self, kind: str, key: str | None, what: str) -> TimelineEntry:
        """The deal's first timeline entry of `kind` (for milestone `key`), once there is one."""

        def entry(status: DealStatus) -> TimelineEntry | None:
            return next((e for e in status.timeline if e.kind == kind and e.milestone_key == key), None)

        found = entry(await self.status_until(what, lambda status: entry(status) is not None))
        assert found is not None
        return found

    async def milestone(self, key: str, *states: MilestoneState, what: str = "") -> DealSummary:
        def ready(summary: DealSummary) -> bool:
            return any(m.key == key and m.state in states for m in summary.milestones)

        return await self.until(what or f"{key} to be {' or '.join(states)}", ready)

    async def stage(self, *stages: DealStage) -> DealSummary:
        return await self.until(f"stage {' or '.join(stages)}", lambda summary: summary.stage in stages)
