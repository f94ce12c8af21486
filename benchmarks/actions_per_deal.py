"""Temporal actions and history events per deal, by kind, against the least the deal needs.

    .venv/bin/python -m benchmarks.actions_per_deal [--milestones 1 3] [--quick] [--jsonl PATH]

Starts its own stack (`benchmarks.stack`), drives one deal of each size alone from start to
completed through the public interfaces (`benchmarks.driver`), and reads its history: events by
type; billable actions by kind (workflow start, activities by name, signals, accepted updates,
timers, search-attribute upserts; markers apart, see `benchmarks.history`); the queries and
heartbeats of the deal from the server's own `action` counter (the driver sends no query: those
are the bridge's, for the portal pages the client opened); and the server's whole count. Then
the least such a deal needs (`benchmarks.minimum`) and the ratio. Goals (issue 11): at most 40
actions for 1 milestone and 102 for 3.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from benchmarks.driver import deal_cast, one_deal
from benchmarks.figures import (
    Report,
    add_milestones_option,
    benchmark_parser,
    milestone_counts,
    run_in_home,
)
from benchmarks.history import billable_actions, event_counts
from benchmarks.minimum import minimum_actions
from benchmarks.stack import BenchStack, bench_stack

GOALS = {1: 40, 3: 102}
QUERIES = "grpc_QueryWorkflow"
HEARTBEATS = ("grpc_RecordActivityTaskHeartbeat", "grpc_RecordActivityTaskHeartbeatById")


def _table(counts: Counter[str] | dict[str, int]) -> str:
    return "\n".join(
        f"    {n:5d}  {kind}"
        for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if n
    )


async def measure(bench: BenchStack, milestones: int, report: Report) -> None:
    async with deal_cast(bench) as cast:
        before = await bench.server_actions()
        events = await one_deal(cast, f"actions-{milestones}m", milestones)
        server = await bench.server_actions() - before
    params = {"milestones": milestones, "deal": "straight"}
    counted = event_counts(events)
    report.figure(
        "history_events",
        len(events),
        "events",
        {**params, "by_type": dict(counted)},
        human=f"{milestones} milestone(s): {len(events)} history events\n{_table(counted)}",
    )
    actions = billable_actions(events)
    by_kind = Counter(actions.by_kind)
    by_kind["query"] = server[QUERIES]
    by_kind["activity heartbeat"] = sum(server[name] for name in HEARTBEATS)
    total = sum(by_kind.values())
    goal = GOALS.get(milestones)
    report.figure(
        "actions",
        total,
        "actions",
        {**params, "by_kind": dict(by_kind), "markers": dict(actions.markers), "goal": goal},
        human=(
            f"{milestones} milestone(s): {total} billable actions (goal: <= {goal})\n{_table(by_kind)}\n"
            f"    not counted: {sum(actions.markers.values())} markers ({dict(actions.markers)}) in "
            f"{actions.marker_tasks} workflow tasks; the server meters one action per such task"
        ),
    )
    report.figure(
        "actions_server_counted",
        sum(server.values()),
        "actions",
        {**params, "by_type": dict(server)},
        human=f"    the server's own action counter for the deal: {sum(server.values())}\n{_table(server)}",
    )
    least = minimum_actions(events, actions)
    report.figure(
        "actions_minimum",
        least.total,
        "actions",
        {**params, "by_kind": dict(least.by_kind)},
        human=f"    the least such a deal needs: {least.total}\n{_table(least.by_kind)}",
    )
    report.figure(
        "actions_ratio_to_minimum",
        round(total / least.total, 2),
        "x",
        params,
        human=f"    {total} / {least.total} = {total / least.total:.2f} x the minimum",
    )


async def run(sizes: list[int], home: Path, report: Report) -> None:
    async with bench_stack(home) as bench:
        for milestones in sizes:
            await measure(bench, milestones, report)


def main() -> None:
    parser = benchmark_parser(__doc__)
    add_milestones_option(parser)
    args = parser.parse_args()
    counts = milestone_counts(args)
    report = Report("actions_per_deal", args.jsonl)
    run_in_home(args.home, "actions-bench-", lambda home: run(counts, home, report))
    raise SystemExit(report.exit_code)


if __name__ == "__main__":
    main()
