"""Carrying out the plan while the deals play: each fault when the run has done its number of
steps, one at a time (a killed process is back before the next fault), forgeries alongside."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.forgery import Forger
from chaos.plan import ChaosPlan, FaultKind, PlannedFault
from chaos.stack import ChaosStack

POLL_SECONDS = 0.2


@dataclass
class FaultLog:
    """What was done, and what the deals finished too soon for."""

    done: Counter[FaultKind] = field(default_factory=Counter)
    skipped: list[PlannedFault] = field(default_factory=list)
    #: Injected by the sandbox itself (500, 429, duplicated and reordered webhooks).
    sandbox: Counter[str] = field(default_factory=Counter)

    @property
    def sandbox_total(self) -> int:
        return sum(self.sandbox.values())


async def carry_out(
    plan: ChaosPlan,
    stack: ChaosStack,
    forger: Forger,
    progress: Callable[[], int],
    finished: asyncio.Event,
    say: Callable[[str], None],
) -> FaultLog:
    """Run every planned fault at its step; returns once all are done or the deals are over."""
    faults = FaultLog()
    forgeries: list[asyncio.Task] = []
    for fault in plan.faults:
        while progress() < fault.at_step and not finished.is_set():
            await asyncio.sleep(POLL_SECONDS)
        if finished.is_set():
            faults.skipped.append(fault)
            continue
        say(f"step {progress()} (planned {fault.at_step}): {fault.describe()}")
        if fault.kind is FaultKind.WORKER_KILL:
            await stack.kill_worker(fault.down_seconds)
        elif fault.kind is FaultKind.TEMPORAL_RESTART:
            await stack.restart_temporal(fault.down_seconds)
        elif fault.kind is FaultKind.BRIDGE_KILL:
            await stack.kill_bridge(fault.down_seconds)
        else:
            assert fault.forgery is not None
            forgeries.append(asyncio.create_task(forger.forge(fault.forgery)))
        faults.done[fault.kind] += 1
    await asyncio.gather(*forgeries)
    return faults
