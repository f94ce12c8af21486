"""`dealflow chaos [--deals N] [--seed S]`: start a stack, play the deals of `dealflow demo`
through the public interfaces while the plan breaks the stack, then check and report.

Exit code 0 when every check holds, 1 when any does not, 2 when the run could not be set up.
Everything the run leaves (logs of the worker, bridge and stack, Temporal's database, Postgres)
stays in `<DEALFLOW_HOME>/chaos/seed-<S>-<time>/` for a look afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RPCError

from chaos import checks
from chaos.faults import FaultLog, carry_out
from chaos.forgery import Forger
from chaos.money import by_deal_and_kind, ledger_money, sandbox_movements
from chaos.plan import SANDBOX_FAULTS, ChaosPlan, make_plan
from chaos.report import ChaosOutcome, render, summary_line
from chaos.stack import ChaosStack, chaos_stack
from dealflow.settings import ConfigError, Settings
from demo.cast import STARTED, DealRun, DemoTarget, demo_cast, onboard_vendors, perform
from devstack.logs import setup_dev_logging
from devstack.temporal import DevServerFailed
from starter import start_deal
from stripe_sandbox.control import SandboxControl

log = logging.getLogger("dealflow.chaos")

#: Deals playing at once; the rest start as those end (2 cores carry about this many).
MAX_IN_FLIGHT = 40
#: The people's patience for one step: longer than the slowest activity attempt (a vendor
#: hand-off in flight when the worker dies is only retried after its 120 s timeout) plus restarts.
STEP_TIMEOUT = 180.0
DEAL_TIMEOUT = 1500.0
#: A deal that has not moved for this long is looked at: a workflow task failing again and
#: again (nondeterminism) means it will never move, and waiting for its timeout helps no one.
QUIET_SECONDS = 20.0
STUCK_ATTEMPTS = 3
START_PATIENCE = 60.0
SETTLE_SECONDS = 60.0


async def _start(target: DemoTarget, run: DealRun) -> None:
    """`dealflow start`, asked again while Temporal is being restarted."""
    deadline = asyncio.get_running_loop().time() + START_PATIENCE
    while True:
        try:
            await start_deal(target.temporal, run.play.spec, target.task_queue)
        except RPCError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1.0)
        else:
            run.play.say(STARTED)
            return


async def _play(target: DemoTarget, run: DealRun, slots: asyncio.Semaphore) -> None:
    async with slots:
        try:
            await _start(target, run)
        except RPCError as error:
            run.error, run.done = f"could not start: {error.message}", True
            return
        await perform(run, DEAL_TIMEOUT)


async def _stuck_reason(target: DemoTarget, run: DealRun) -> str | None:
    """Why the deal's workflow task keeps failing, if it does."""
    handle = target.temporal.get_workflow_handle(run.play.spec.workflow_id)
    try:
        pending = (await handle.describe()).raw_description.pending_workflow_task
        if pending.attempt < STUCK_ATTEMPTS:
            return None
        history = await handle.fetch_history()
    except RPCError:
        return None
    failures = checks.failed_tasks(history)
    return f"stuck: its workflow task failed {pending.attempt} times; last " + (failures[-1] if failures else "no message")


async def _watch_for_stuck(target: DemoTarget, plays: dict[str, tuple[DealRun, asyncio.Task]]) -> None:
    """End the play of a deal that can never move again, with the reason as its error."""
    last_seen: dict[str, tuple[int, float]] = {}
    while True:
        await asyncio.sleep(QUIET_SECONDS / 2)
        now = time.monotonic()
        for deal_id, (run, task) in plays.items():
            if task.done():
                continue
            steps = len(run.play.steps)
            if last_seen.get(deal_id, (None, 0.0))[0] != steps:
                last_seen[deal_id] = (steps, now)
            elif now - last_seen[deal_id][1] > QUIET_SECONDS and (reason := await _stuck_reason(target, run)):
                run.error = reason
                task.cancel()


async def _play_all(target: DemoTarget, runs: Sequence[DealRun]) -> None:
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    plays = {run.play.spec.deal_id: (run, asyncio.create_task(_play(target, run, slots))) for run in runs}
    watcher = asyncio.create_task(_watch_for_stuck(target, plays))
    try:
        for _run, task in plays.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        watcher.cancel()
        await asyncio.wait([watcher])


async def _settle(sandbox: SandboxControl, chaos: ChaosStack, deal_ids: set[str]) -> None:
    """The ledger is written by activities after the stages change: give it time to catch up."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        theirs = by_deal_and_kind(await sandbox_movements(sandbox), deal_ids)
        if await ledger_money(chaos.stack.pool, deal_ids) == theirs:
            return
        await asyncio.sleep(1.0)


async def _check(
    sandbox: SandboxControl, chaos: ChaosStack, runs: Sequence[DealRun], forger: Forger
) -> list[checks.CheckResult]:
    deal_ids = {run.play.spec.deal_id for run in runs}
    await _settle(sandbox, chaos, deal_ids)
    movements = await sandbox_movements(sandbox)
    return [
        checks.end_states(runs),
        await checks.replays(chaos.stack.client, sorted(deal_ids)),
        checks.charged_once(runs, movements),
        await checks.forgeries_funded_nothing(forger.sent, runs, movements, chaos.stack.pool),
        await checks.ledger_equals_sandbox(chaos.stack.pool, movements, deal_ids),
        await checks.reconcile_exits_zero(chaos.environment),
    ]


def _sdk_logs_to_the_log_file() -> None:
    """The SDK's core warns on stderr while Temporal is down, which this run does on purpose;
    those lines belong in the run's log, not between the report's lines."""
    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    logging_config = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding)
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging_config)), error_if_already_set=False)


async def run_chaos(plan: ChaosPlan, home: Path, say: Callable[[str], None]) -> ChaosOutcome:
    started = time.monotonic()
    _sdk_logs_to_the_log_file()
    async with chaos_stack(home) as chaos:
        target = DemoTarget.from_stack(chaos.stack)
        say(f"stack up in {time.monotonic() - started:.0f} s; playing")
        async with demo_cast(target, step_timeout=STEP_TIMEOUT) as cast, chaos.sandbox_control() as sandbox:
            runs = [
                cast.deal_run(scenario, f"chaos-{plan.seed}-{number:03d}", number)
                for number, scenario in enumerate(plan.scenarios, start=1)
            ]
            forger = Forger(
                bridge_url=chaos.stack.bridge_url,
                webhook_secret=chaos.stack.settings.require("STRIPE_WEBHOOK_SECRET"),
                sandbox=sandbox,
                summaries=lambda: [run.summary for run in runs if run.summary is not None],
                rng=random.Random(plan.seed),
            )
            await onboard_vendors(target, runs)
            await sandbox.set_faults(**SANDBOX_FAULTS, seed=plan.seed)
            finished = asyncio.Event()
            driver = asyncio.create_task(
                carry_out(plan, chaos, forger, lambda: sum(len(run.play.steps) for run in runs), finished, say)
            )
            try:
                await _play_all(target, runs)
            finally:
                finished.set()
                faults: FaultLog = await driver
            faults.sandbox.update((await sandbox.faults())["injected"])
            await sandbox.reset_faults()
            say(f"deals played in {time.monotonic() - started:.0f} s; checking")
            results = await _check(sandbox, chaos, runs, forger)
    return ChaosOutcome(plan, faults, forger.sent, results, time.monotonic() - started)


def main(deals: int, seed: int) -> int:
    """`dealflow chaos`; 0 when every check holds, 1 when one does not, 2 on setup errors."""
    console = Console() if sys.stdout.isatty() else Console(width=180)
    plan = make_plan(deals, seed)
    try:
        home = Settings().home.resolve() / "chaos" / f"seed-{seed}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    except ValueError as error:
        console.print(f"[red]dealflow chaos:[/red] {error}")
        return 2
    home.mkdir(parents=True, exist_ok=True)
    console.print(
        f"dealflow chaos: {plan.deals} deals, seed {seed}, {len(plan.faults)} planned faults; "
        f"logs and state in {home}",
        highlight=False,
    )

    def say(line: str) -> None:
        console.print(f"  {line}", highlight=False)

    with (home / "chaos.log").open("a") as stream:
        setup_dev_logging(stream)
        try:
            outcome = asyncio.run(run_chaos(plan, home, say))
        except (ConfigError, DevServerFailed, RuntimeError) as error:
            console.print(f"[red]dealflow chaos:[/red] the stack could not run: {error}", highlight=False)
            return 2
        log.info(summary_line(outcome))
    console.print(render(outcome), highlight=False, soft_wrap=True)
    return 0 if outcome.ok else 1
