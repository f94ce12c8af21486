"""The bare twin: a plain Temporal workflow with no-op activities, doing what a `TwinPlan` says
(`benchmarks.twin_worker` runs it)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from benchmarks.twin_plan import TwinPlan, TwinTask
    from dealflow.contract import DEAL_STAGE

#: The twin's no-op activities finish at once; this only bounds a lost one.
ACTIVITY_TIMEOUT = timedelta(seconds=60)


@activity.defn(dynamic=True)
async def no_op(_args: Sequence[RawValue]) -> None:
    """Every activity of the twin, whatever its name: nothing, at once."""


@workflow.defn
class TwinWorkflow:
    @workflow.init
    def __init__(self, plan: TwinPlan) -> None:
        self.plan = plan
        #: The next task to perform; tasks are performed in the plan's order.
        self.next = 0
        self.signals = 0
        self.activities_started = 0
        self.activities_done: set[int] = set()
        self.timers: dict[int, asyncio.Task[None]] = {}
        self.timers_fired: set[int] = set()
        self.unclaimed_updates = [n for n, task in enumerate(plan.tasks) if task.update is not None]

    @workflow.run
    async def run(self, plan: TwinPlan) -> None:
        for number, task in enumerate(plan.tasks):
            if task.update is None:
                await workflow.wait_condition(lambda n=number: self._ready(n))
                self._perform(task)
            else:  # its update's handler performs it
                await workflow.wait_condition(lambda n=number: self.next > n)
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.signal(dynamic=True)
    def hint(self, _name: str, _args: Sequence[RawValue]) -> None:
        self.signals += 1

    @workflow.update(dynamic=True)
    async def act(self, name: str, _args: Sequence[RawValue]) -> None:
        number = next(n for n in self.unclaimed_updates if self.plan.tasks[n].update == name)
        self.unclaimed_updates.remove(number)
        await workflow.wait_condition(lambda: self._ready(number))
        task = self.plan.tasks[number]
        self._perform(task)
        if (following := task.answer_when_ready) is not None:
            await workflow.wait_condition(
                lambda: self._ready(following, with_signals=False) or self.next > following
            )

    def _ready(self, number: int, *, with_signals: bool = True) -> bool:
        task = self.plan.tasks[number]
        return (
            self.next == number
            and (not with_signals or self.signals >= task.signals_before)
            and self.activities_done.issuperset(task.activities_before)
            and self.timers_fired.issuperset(task.timers_before)
        )

    def _perform(self, task: TwinTask) -> None:
        for name in task.local_activities:  # the task completes once they have
            workflow.start_local_activity(name, start_to_close_timeout=ACTIVITY_TIMEOUT)
        for name in task.activities:
            number = self.activities_started
            self.activities_started += 1
            started = workflow.start_activity(name, start_to_close_timeout=ACTIVITY_TIMEOUT)
            started.add_done_callback(lambda _done, n=number: self.activities_done.add(n))
        for _ in range(task.upserts):
            workflow.upsert_search_attributes([DEAL_STAGE.value_set(f"twin-{self.next}")])
        for seconds in task.timers:
            number = len(self.timers)
            timer = self.timers[number] = asyncio.create_task(asyncio.sleep(seconds))
            timer.add_done_callback(
                lambda done, n=number: done.cancelled() or self.timers_fired.add(n)
            )
        for number in task.cancel_timers:
            self.timers[number].cancel()
        self.next += 1
