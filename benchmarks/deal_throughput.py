"""Deals per second, driven concurrently to completion, against a bare twin doing the same
Temporal work, and the CPU seconds each process spends per deal.

    .venv/bin/python -m benchmarks.deal_throughput [--deals 100] [--milestones 1 3] [--quick] [--jsonl PATH]

Starts its own stack (`benchmarks.stack`). For each deal size it first drives one deal alone and
turns its fresh history into the twin's plan (`benchmarks.twin_plan`: per workflow task, the
activities it started, its upserts and timers, and the signal or update that let it go). Then
N deals at once from start to completed through the public interfaces (`benchmarks.driver`),
and N twins at once (`benchmarks.twin`: a plain workflow of no-op activities, on its own worker
process configured like worker.py), sent the same updates and signals. Deals per second is N
over the time from the first start to the last completion; CPU seconds per deal are read from
/proc for the Temporal server, the worker, the sandbox, the bridge, Postgres and this process
(the driver, the SMTP sink and the vendors' server). Goal (issue 11): dealflow >= 0.8 x the twin.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchmarks.cpu import Watched, report_cpu_per
from benchmarks.driver import completed, deal_cast, drive_deals, one_deal
from benchmarks.figures import (
    Report,
    add_milestones_option,
    benchmark_parser,
    count,
    milestone_counts,
    run_in_home,
    size,
)
from benchmarks.history import billable_actions, missed_sticky_worker
from benchmarks.stack import STACK_PROCESSES, BenchStack, bench_stack
from benchmarks.twin_plan import TwinPlan, twin_plan
from benchmarks.twin_worker import drive_twin, twin_worker_process
from dealflow.models import workflow_id_for

GOAL_RATIO = 0.8
TWIN_QUEUE = "twin"


async def missed_sticky_per_run(bench: BenchStack, workflow_ids: list[str]) -> float:
    """Workflow tasks per run that waited past the sticky timeout (`missed_sticky_worker`)."""
    client = bench.stack.client
    histories = await asyncio.gather(
        *(client.get_workflow_handle(workflow_id).fetch_history() for workflow_id in workflow_ids)
    )
    return sum(missed_sticky_worker(history.events) for history in histories) / len(workflow_ids)


async def fresh_plan(bench: BenchStack, milestones: int) -> tuple[TwinPlan, int]:
    """The twin's plan from one deal of this size run now, and that deal's billable actions."""
    async with deal_cast(bench) as cast:
        events = await one_deal(cast, f"plan-{milestones}m", milestones)
    return twin_plan(events), billable_actions(events).total


async def measure(
    bench: BenchStack, twin_pid: int, deals: int, milestones: int, report: Report
) -> None:
    plan, real_actions = await fresh_plan(bench, milestones)
    params = {"deals": deals, "milestones": milestones}

    meter = bench.cpu_meter(*STACK_PROCESSES)
    async with deal_cast(bench) as cast:
        meter.start()
        started = cast.now()
        times = completed(await drive_deals(cast, f"tput-{milestones}m", deals, milestones), report)
        cpu = meter.stop()
    # To the last completion: a deal that never completes is a problem, not part of the rate.
    seconds = max(t.at["completed"] for t in times) - started
    params["completed"] = len(times)

    twin_meter = bench.cpu_meter("temporal", "driver", worker=Watched(twin_pid))
    twin_meter.start()
    started = time.monotonic()
    twin_ids = [f"twin-{milestones}m-{n:04d}" for n in range(deals)]
    await asyncio.gather(
        *(drive_twin(bench.stack.client, plan, workflow_id, TWIN_QUEUE) for workflow_id in twin_ids)
    )
    twin_seconds = time.monotonic() - started
    twin_cpu = twin_meter.stop()
    twin_history = await bench.stack.client.get_workflow_handle(twin_ids[0]).fetch_history()
    twin_actions = billable_actions(list(twin_history.events)).total

    rate, twin_rate = len(times) / seconds, deals / twin_seconds
    report.figure(
        "deals_per_second",
        round(rate, 3),
        "deals/s",
        params,
        human=f"{milestones} milestone(s): {len(times)} deals in {seconds:.1f} s = {rate:.2f} deals/s",
    )
    report.figure(
        "twin_deals_per_second",
        round(twin_rate, 3),
        "deals/s",
        {
            **params,
            "plan": {
                "workflow_tasks": len(plan.tasks),
                "activities": plan.count("activities"),
                "local_activities": plan.count("local_activities"),
                "upserts": plan.count("upserts"),
                "timers": plan.count("timers"),
                "updates": plan.triggers_of("update"),
                "signals": plan.triggers_of("signal"),
            },
            "actions": {"dealflow": real_actions, "twin": twin_actions},
        },
        human=(
            f"    bare twin: {deals} in {twin_seconds:.1f} s = {twin_rate:.2f} deals/s "
            f"({plan.count('activities')} activities, {plan.count('local_activities')} local, {plan.count('upserts')} upserts, {plan.count('timers')} timers, "
            f"{plan.triggers_of('update')} updates, {plan.triggers_of('signal')} signals per deal; its history has "
            f"{twin_actions} billable actions, the deal's {real_actions})"
        ),
    )
    ratio = rate / twin_rate
    report.figure(
        "ratio_to_twin",
        round(ratio, 3),
        "x",
        {**params, "goal": GOAL_RATIO},
        human=f"    dealflow / twin = {ratio:.2f} (goal >= {GOAL_RATIO})",
    )
    missed = await missed_sticky_per_run(bench, [workflow_id_for(t.deal_id) for t in times])
    twin_missed = await missed_sticky_per_run(bench, twin_ids)
    report.figure(
        "sticky_timeouts_per_deal",
        round(missed, 2),
        "tasks",
        {**params, "twin": round(twin_missed, 2)},
        human=(
            f"    workflow tasks past the sticky timeout, per deal: {missed:.2f} (twin {twin_missed:.2f})"
        ),
    )
    report_cpu_per(report, "cpu_seconds_per_deal", cpu, deals, params, "CPU s per deal")
    report_cpu_per(
        report, "twin_cpu_seconds_per_deal", twin_cpu, deals, params, "twin CPU s per deal"
    )


async def run(deals: int, sizes: list[int], home: Path, report: Report) -> None:
    async with bench_stack(home) as bench, twin_worker_process(bench, TWIN_QUEUE) as twin:
        assert twin.process is not None
        for milestones in sizes:
            await measure(bench, twin.process.pid, deals, milestones, report)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--deals", type=count, help="deals driven at once (default 100; --quick 5)")
    add_milestones_option(parser)
    args = parser.parse_args()
    deals = size(args.deals, full=100, quick=5, is_quick=args.quick)
    counts = milestone_counts(args)
    report = Report("deal_throughput", args.jsonl)
    run_in_home(args.home, "throughput-bench-", lambda home: run(deals, counts, home, report))
    raise SystemExit(report.exit_code)


if __name__ == "__main__":
    main()
