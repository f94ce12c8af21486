"""The chaos plan: which faults, at which moment, for a seed and a deal count.

A moment is a count of deal steps done across the run (a deal says about eight: started, signed,
paid, delivered, approved, ...), not a time, so the same seed breaks the same run at the same
points of its progress on a fast machine and a slow one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from demo.scenarios import Scenario, scenarios_for

#: Steps a deal says, about: the plan spreads its faults over this many steps per deal.
STEPS_PER_DEAL = 8
#: Faults land between these fractions of the run's expected steps (none before the deals have
#: started and moved, none after the last are nearly done).
FIRST_FAULT, LAST_FAULT = 0.15, 0.8

#: Sandbox faults for the whole run: what a busy Stripe and a flaky network do.
SANDBOX_FAULTS = {
    "error_500_probability": 0.10,
    "error_429_probability": 0.05,
    "duplicate_webhook_probability": 0.30,
    "reorder_window": 3,
}


class FaultKind(StrEnum):
    WORKER_KILL = "worker SIGKILL"
    TEMPORAL_RESTART = "Temporal restart"
    BRIDGE_KILL = "bridge SIGKILL"
    FORGED_WEBHOOK = "forged webhook"


class Forgery(StrEnum):
    """What is wrong with a forged webhook. The first three must be refused at the door (400);
    the last two are validly signed (the run knows the secret) and must fund nothing."""

    BAD_SIGNATURE = "bad signature"
    STALE_TIMESTAMP = "stale timestamp"
    FUTURE_TIMESTAMP = "future timestamp"
    WRONG_AMOUNT = "signed, wrong amount"
    OTHER_DEALS_PAYMENT = "signed, another deal's payment"

    @property
    def signed_validly(self) -> bool:
        return self in (Forgery.WRONG_AMOUNT, Forgery.OTHER_DEALS_PAYMENT)


@dataclass(frozen=True)
class PlannedFault:
    at_step: int
    kind: FaultKind
    forgery: Forgery | None = None
    #: Seconds a killed process stays down before it is started again.
    down_seconds: float = 0.0

    def describe(self) -> str:
        return f"{self.kind}: {self.forgery}" if self.forgery else str(self.kind)


@dataclass(frozen=True)
class ChaosPlan:
    seed: int
    scenarios: list[Scenario]
    faults: list[PlannedFault]

    @property
    def deals(self) -> int:
        return len(self.scenarios)

    def count(self, kind: FaultKind) -> int:
        return sum(1 for fault in self.faults if fault.kind is kind)


def worker_kills_for(deals: int) -> int:
    return 3 + deals // 20


def forgeries_for(deals: int) -> int:
    """Each kind twice at least; about three for every ten deals in bigger runs."""
    return max(2 * len(Forgery), round(0.3 * deals))


def make_plan(deals: int, seed: int) -> ChaosPlan:
    """The same (deals, seed) gives the same plan, fault for fault."""
    rng = random.Random(seed)
    expected = deals * STEPS_PER_DEAL
    first, last = max(1, int(FIRST_FAULT * expected)), max(2, int(LAST_FAULT * expected))

    def moment() -> int:
        return rng.randint(first, last)

    faults = [
        PlannedFault(moment(), FaultKind.WORKER_KILL, down_seconds=round(rng.uniform(0, 3), 1))
        for _ in range(worker_kills_for(deals))
    ]
    faults.append(PlannedFault(moment(), FaultKind.TEMPORAL_RESTART, down_seconds=round(rng.uniform(1, 5), 1)))
    faults.append(PlannedFault(moment(), FaultKind.BRIDGE_KILL, down_seconds=round(rng.uniform(1, 5), 1)))
    kinds = [list(Forgery)[i % len(Forgery)] for i in range(forgeries_for(deals))]
    rng.shuffle(kinds)
    faults += [PlannedFault(moment(), FaultKind.FORGED_WEBHOOK, forgery=forgery) for forgery in kinds]
    faults.sort(key=lambda fault: fault.at_step)
    return ChaosPlan(seed, scenarios_for(deals), faults)
