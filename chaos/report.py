"""The end of a chaos run: one table row per check, the problems deal by deal, and one summary
line a README or a CI log can quote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text

from chaos.checks import CheckResult
from chaos.faults import FaultLog
from chaos.forgery import ForgedWebhook
from chaos.plan import ChaosPlan, FaultKind

#: Problems listed per deal before the rest is only counted.
MAX_PROBLEMS = 60


@dataclass(frozen=True)
class ChaosOutcome:
    plan: ChaosPlan
    faults: FaultLog
    forged: Sequence[ForgedWebhook]
    checks: Sequence[CheckResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def check(self, name: str) -> CheckResult:
        return next(check for check in self.checks if check.name == name)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def summary_line(outcome: ChaosOutcome) -> str:
    plan, done = outcome.plan, outcome.faults.done
    broken = (
        f"chaos: {plan.deals} deals, seed {plan.seed}, {_plural(done[FaultKind.WORKER_KILL], 'worker kill')}, "
        f"{_plural(done[FaultKind.TEMPORAL_RESTART], 'temporal restart')}, "
        f"{_plural(done[FaultKind.BRIDGE_KILL], 'bridge kill')}, {outcome.faults.sandbox_total} faults injected, "
        f"{_plural(len(outcome.forged), 'forged webhook')}"
    )
    ends, replay = outcome.check("end states"), outcome.check("histories replay")
    wrong = len({p.deal_id for p in ends.problems})
    replaying = plan.deals - len({p.deal_id for p in replay.problems})
    findings = [
        f"all {plan.deals} deals ended right" if not wrong else f"{_plural(wrong, 'deal')} ended wrong",
        f"{replaying}/{plan.deals} histories replay",
        "none charged twice" if outcome.check("no double charge").ok else "a milestone charged twice",
        "no forgery funded anything" if outcome.check("forgeries funded nothing").ok else "forgeries funded money",
        "ledger = sandbox to the cent" if outcome.check("ledger = sandbox").ok else "ledger ≠ sandbox",
        "reconcile ok" if outcome.check("dealflow reconcile").ok else "reconcile failed",
    ]
    return f"{broken}; {', '.join(findings)}, in {outcome.seconds:.0f} s"


def render(outcome: ChaosOutcome) -> Group:
    table = Table(title=f"dealflow chaos · {outcome.plan.deals} deals · seed {outcome.plan.seed}", title_justify="left")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for check in outcome.checks:
        mark = Text("✓ ok", style="green") if check.ok else Text(f"✗ {len(check.problems)} problem(s)", style="red")
        table.add_row(check.name, mark, check.detail)
    skipped = outcome.faults.skipped
    plan_row = "every planned fault was carried out"
    if skipped:
        plan_row = f"{len(skipped)} planned fault(s) not reached (the deals ended first): " + ", ".join(
            f"{fault.describe()} at step {fault.at_step}" for fault in skipped
        )
    sandbox = ", ".join(f"{count} {kind}" for kind, count in sorted(outcome.faults.sandbox.items()))
    table.add_row("plan", Text("·", style="dim"), f"{plan_row}; sandbox injected {sandbox or 'nothing'}")
    parts: list[Table | Text] = [table]
    problems = [problem for check in outcome.checks for problem in check.problems]
    if problems:
        deals = Table(title="Problems, deal by deal", title_justify="left")
        for column in ("deal", "check", "problem"):
            deals.add_column(column, overflow="fold")
        for problem in sorted(problems, key=lambda p: (p.deal_id, p.check))[:MAX_PROBLEMS]:
            deals.add_row(problem.deal_id, problem.check, Text(problem.problem, style="red"))
        parts.append(deals)
        if len(problems) > MAX_PROBLEMS:
            parts.append(Text(f"... and {len(problems) - MAX_PROBLEMS} more problems (see the run's log)"))
    parts.append(Text(summary_line(outcome), style="bold green" if outcome.ok else "bold red"))
    return Group(*parts)
