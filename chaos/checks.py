"""What must hold after the chaos, each check one function with one row in the report: every
deal ended as its scenario says, every history replays against today's DealWorkflow, no
milestone was charged twice without its refund, no forged event funded anything, the ledger is
the sandbox's money to the cent, and `dealflow reconcile` agrees."""

from __future__ import annotations

import asyncio
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import get_args

import asyncpg
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from chaos.forgery import FORGED_PREFIX, ForgedWebhook
from chaos.money import Movement, by_deal_and_kind, funding_payments, ledger_money
from dealflow.models import workflow_id_for
from dealflow.money import format_money
from demo.cast import DealRun
from truth.differences import Problem
from workflows.deal import DealWorkflow

#: How the SDK names the event a replay tripped over.
_HISTORY_EVENT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
_SDK_MESSAGE = re.compile(r"\[TMPRL\d+\][^\"\n]*")
_BROKEN_TASK_CAUSES = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
}
RECONCILE_TIMEOUT = 120.0


@dataclass(frozen=True)
class DealProblem:
    deal_id: str
    check: str
    problem: str


@dataclass
class CheckResult:
    name: str
    detail: str = ""
    problems: list[DealProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, deal_id: str, problem: str) -> None:
        self.problems.append(DealProblem(deal_id, self.name, problem))


def end_states(runs: Sequence[DealRun]) -> CheckResult:
    result = CheckResult("end states")
    for run in runs:
        if not run.ok:
            stage = run.summary.stage if run.summary else "no status"
            result.add(run.play.spec.deal_id, f"{run.error or 'did not finish'} (stage {stage}, expected {run.scenario.end})")
    ended = len(runs) - len(result.problems)
    result.detail = f"{ended}/{len(runs)} deals ended as their scenario expects"
    return result


def _replay_problem(error: Exception) -> str:
    """The event a replay failed on, first, then the SDK's own words (without its Rust dump)."""
    text = str(error).strip()
    said = _SDK_MESSAGE.search(text)
    message = said.group(0) if said else (text.splitlines()[0] if text else type(error).__name__)
    event = _HISTORY_EVENT.search(text)
    return f"event {event.group(1)} ({event.group(2)}): {message}" if event else message


def failed_tasks(history: WorkflowHistory) -> list[str]:
    """Workflow tasks the worker failed because of the workflow's code (a stuck deal's last
    word). A task the server refused because a message arrived meanwhile (unhandled command) is
    how Temporal works, not a failure."""
    return [
        f"workflow task failed at event {event.event_id}: "
        f"{event.workflow_task_failed_event_attributes.failure.message.splitlines()[0]}"
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and event.workflow_task_failed_event_attributes.cause in _BROKEN_TASK_CAUSES
    ]


async def replays(client: Client, deal_ids: Sequence[str]) -> CheckResult:
    """Each deal's history replayed with today's DealWorkflow and the client's converter."""
    result = CheckResult("histories replay")
    replayer = Replayer(workflows=[DealWorkflow], data_converter=client.data_converter)
    for deal_id in deal_ids:
        try:
            history = await client.get_workflow_handle(workflow_id_for(deal_id)).fetch_history()
        except Exception as error:  # noqa: BLE001 - reported as this deal's problem
            result.add(deal_id, f"history not readable: {error}")
            continue
        failed = failed_tasks(history)
        if failed:
            result.add(deal_id, f"{len(failed)} failed workflow task(s), last: {failed[-1]}")
        replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if replay.replay_failure is not None:
            result.add(deal_id, f"replay fails at {_replay_problem(replay.replay_failure)}")
    replaying = len(deal_ids) - len({p.deal_id for p in result.problems})
    result.detail = f"{replaying}/{len(deal_ids)} histories replay cleanly"
    return result


def charged_once(runs: Sequence[DealRun], movements: Sequence[Movement]) -> CheckResult:
    """Per milestone, from the sandbox's money log: what was charged, less what was refunded, is
    at most the milestone's amount (a second payment must have been refunded)."""
    result = CheckResult("no double charge")
    charged: dict[tuple[str, str], list[int]] = defaultdict(list)
    refunded: dict[tuple[str, str], int] = defaultdict(int)
    for m in movements:
        if m.deal_id and m.milestone_key:
            if m.kind in ("charge", "capture"):
                charged[(m.deal_id, m.milestone_key)].append(m.amount)
            elif m.kind == "refund":
                refunded[(m.deal_id, m.milestone_key)] += m.amount
    twice = 0
    for run in runs:
        spec = run.play.spec
        for milestone in spec.milestones:
            key = (spec.deal_id, milestone.key)
            charges = charged.get(key, [])
            twice += len(charges) > 1
            kept = sum(charges) - refunded.get(key, 0)
            if kept > milestone.amount:
                result.add(
                    spec.deal_id,
                    f"{milestone.key} charged {len(charges)}x ({format_money(sum(charges), spec.currency)}), "
                    f"refunded {format_money(refunded.get(key, 0), spec.currency)}: "
                    f"{format_money(kept - milestone.amount, spec.currency)} too much kept",
                )
    result.detail = f"{twice} milestone(s) paid twice, every extra payment refunded" if result.ok else ""
    return result


async def forgeries_funded_nothing(
    forged: Sequence[ForgedWebhook], runs: Sequence[DealRun], movements: Sequence[Movement], pool: asyncpg.Pool
) -> CheckResult:
    """Badly signed forgeries were refused; and every payment that funded a milestone (in the
    deal's status and in the ledger) is a real payment of that very deal and milestone."""
    result = CheckResult("forgeries funded nothing")
    for sent in forged:
        if not sent.answered_as_expected:
            result.add(sent.deal_id, f"forged webhook ({sent.forgery}) answered HTTP {sent.status_code}: {sent.answer}")
    owner = {m.payment_intent: (m.deal_id, m.milestone_key) for m in movements if m.payment_intent}
    forged_by_object = {sent.object_id: sent for sent in forged}

    def check(deal_id: str, milestone_key: str, intent_id: str, where: str) -> None:
        if owner.get(intent_id) == (deal_id, milestone_key):
            return
        belongs = "/".join(filter(None, owner.get(intent_id, (None, None)))) or "no deal (made up)"
        sent = forged_by_object.get(intent_id)
        by = f", named by forged event {sent.event_id} ({sent.forgery})" if sent else ""
        result.add(deal_id, f"{milestone_key} funded ({where}) by {intent_id}, which belongs to {belongs}{by}")

    deal_ids = {run.play.spec.deal_id for run in runs}
    for run in runs:
        for m in run.summary.milestones if run.summary else []:
            if m.payment_intent_id and m.funded:
                check(run.play.spec.deal_id, m.key, m.payment_intent_id, "deal status")
    for row in await funding_payments(pool, deal_ids):
        check(row["deal_id"], row["milestone_key"], row["stripe_id"], "ledger")
    refused = sum(sent.refused for sent in forged)
    hints = sum(200 <= sent.status_code < 300 for sent in forged)
    made_up = sum(FORGED_PREFIX in sent.object_id for sent in forged)
    result.detail = (
        f"{len(forged)} forged: {refused} refused (400), {hints} taken as hints and re-read from Stripe "
        f"({made_up} naming made-up objects)"
    )
    return result


async def ledger_equals_sandbox(
    pool: asyncpg.Pool, movements: Sequence[Movement], deal_ids: set[str]
) -> CheckResult:
    result = CheckResult("ledger = sandbox")
    ledger = await ledger_money(pool, deal_ids)
    sandbox = by_deal_and_kind(list(movements), deal_ids)
    for deal_id, kind in sorted(set(ledger) | set(sandbox)):
        mine, theirs = ledger.get((deal_id, kind), 0), sandbox.get((deal_id, kind), 0)
        if mine != theirs:
            result.add(deal_id, f"{kind}: ledger {mine}, sandbox {theirs} (minor units)")
    total = sum(sandbox.values())
    result.detail = f"{len(sandbox)} (deal, kind) sums, {total} minor units, equal to the cent" if result.ok else ""
    return result


async def reconcile_exits_zero(environment: dict[str, str]) -> CheckResult:
    """`dealflow reconcile` as an operator runs it, against the stack's ledger and sandbox."""
    result = CheckResult("dealflow reconcile")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dealflow.cli", "reconcile",
        env={**environment, "COLUMNS": "240"},  # whole ids in its table
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), RECONCILE_TIMEOUT)
    lines = [line for line in output.decode(errors="replace").splitlines() if line.strip()]
    for line in lines:
        cells = [cell.strip() for cell in re.split(r"[│┃]", line) if cell.strip()]
        if cells and cells[0] in get_args(Problem):
            deal = cells[3].split("/")[0] if len(cells) > 3 else "-"
            result.add(deal, "reconcile: " + " ".join(cells))
    if process.returncode != 0 and result.ok:
        result.add("-", f"exit code {process.returncode}: " + " | ".join(lines[-5:]))
    result.detail = f"exit code {process.returncode}: {lines[-1] if lines else ''}".strip()
    return result
