"""The worker's and the Temporal server's memory with many open deals, and what the sandbox costs.

    .venv/bin/python -m benchmarks.memory [--deals 10000] [--quick] [--jsonl PATH]

Starts its own stack as `dealflow dev` runs it: the Temporal dev server (SQLite file, WAL), the
embedded Postgres, the SMTP sink, the offline Stripe sandbox and the bridge, with the worker as
its own process (`python worker.py`, configured by the DEALFLOW_WORKER_* settings of this
environment), so its RSS is its own. Deals are opened through `starter.start_deal`, 100 in
flight at a time; a deal is open once its SOW mail reached the sink (it then waits for the
signature). RSS is read at 0, 10 %, 50 % and 100 % of `--deals`, each time once the worker has
gone quiet; "per cached deal" divides the growth over 0 by the deals the cache can hold.

Then the sandbox's cost per cached deal: two fresh workers on queues of their own, each caching
every deal it opens, one with the workflows package shared by every run
(DEALFLOW_WORKER_SANDBOX_IMPORTS=shared) and one importing it again in each run (`per-run`,
the SDK's default).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from temporalio.client import Client

import worker as worker_module
from benchmarks.figures import ROOT, Report
from chaos.stack import ChaosStack, ChildProcess, chaos_stack
from dealflow.models import DealSpec
from dealflow.specs import load_spec
from devstack.mailsink import MailSink
from starter import start_deal

EXAMPLE = ROOT / "examples" / "website-redesign.yaml"
IN_FLIGHT = 100
MB = 1024 * 1024
#: A worker is quiet when it used less CPU than this in one sampling interval.
QUIET_CPU_SECONDS = 0.03
QUIET_INTERVAL = 0.5
QUIET_TIMEOUT = 300.0
OPEN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Deals:
    """Where deals are opened and how to tell they are open."""

    client: Client
    spec: DealSpec
    mail: MailSink
    task_queue: str
    prefix: str

    async def open(self, first: int, last: int) -> float:
        """Open deals number first..last-1, IN_FLIGHT at a time; seconds until all mailed."""
        started_at = time.monotonic()
        mails_before = len(self.mail.messages)
        next_number = first
        while True:
            opened = len(self.mail.messages) - mails_before
            if opened >= last - first:
                return time.monotonic() - started_at
            if time.monotonic() - started_at > OPEN_TIMEOUT:
                raise RuntimeError(f"only {opened} of {last - first} deals mailed their SOW in {OPEN_TIMEOUT:.0f} s")
            batch = range(next_number, min(last, first + opened + IN_FLIGHT))
            await asyncio.gather(*(self._start(number) for number in batch))
            next_number = max(next_number, batch.stop)
            await asyncio.sleep(0.02)

    async def _start(self, number: int) -> None:
        deal_id = f"{self.prefix}-{number:05d}"
        spec = self.spec.model_copy(update={"deal_id": deal_id})
        await start_deal(self.client, spec, self.task_queue)

    async def running(self) -> int:
        """Deals of this queue Temporal says are running (so none failed on the way)."""
        counted = await self.client.count_workflows(
            f"TaskQueue = '{self.task_queue}' AND ExecutionStatus = 'Running'"
        )
        return counted.count


async def quiet(process: psutil.Process) -> None:
    """Wait until the process has finished its work: two intervals in a row without CPU."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    calm = 0
    before = sum(process.cpu_times()[:2])
    while calm < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"pid {process.pid} did not go quiet within {QUIET_TIMEOUT:.0f} s")
        await asyncio.sleep(QUIET_INTERVAL)
        now = sum(process.cpu_times()[:2])
        calm = calm + 1 if now - before < QUIET_CPU_SECONDS else 0
        before = now


def temporal_server() -> psutil.Process:
    (server,) = [p for p in psutil.Process().children(recursive=True) if "start-dev" in p.cmdline()]
    return server


def rss_mb(process: psutil.Process) -> float:
    return round(process.memory_info().rss / MB, 1)


def worker_params(environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in environment.items() if name.startswith("DEALFLOW_WORKER_")}


async def open_deals_measuring(stack: ChaosStack, spec: DealSpec, total: int, figures: Report) -> None:
    """The configured worker: RSS at each share of `total` open deals, and the time to open them."""
    assert stack.worker.process is not None and stack.stack.mail is not None
    worker = psutil.Process(stack.worker.process.pid)
    server = temporal_server()
    settings = stack.stack.settings
    deals = Deals(stack.stack.client, spec, stack.stack.mail, settings.task_queue, "memory")
    params = worker_params(stack.environment)
    cache = settings.worker_max_cached_workflows
    checkpoints = sorted({round(total * share) for share in (0, 0.1, 0.5, 1)})
    figures.say(
        f"worker caching up to {cache} deals, sandbox imports {settings.worker_sandbox_imports}, "
        f"{IN_FLIGHT} deals opening at a time"
    )
    await quiet(worker)
    base = rss_mb(worker)
    opened, opening_seconds = 0, 0.0
    for checkpoint in checkpoints:
        if checkpoint > opened:
            seconds = await deals.open(opened, checkpoint)
            figures.record(
                "open_rate", round((checkpoint - opened) / seconds, 1), "deals/s",
                deals=checkpoint - opened, from_open=opened, in_flight=IN_FLIGHT, **params,
            )  # fmt: skip
            opening_seconds += seconds
            opened = checkpoint
            await quiet(worker)
            running = await deals.running()
            if running != opened:
                raise RuntimeError(f"{running} deals are running, {opened} were opened")
        worker_rss, server_rss = rss_mb(worker), rss_mb(server)
        cached = min(opened, cache)
        per_deal = round((worker_rss - base) * 1024 / cached, 1) if cached else None
        figures.say(
            f"{opened:>6} open deals: worker {worker_rss} MB, Temporal server {server_rss} MB"
            + (f", {per_deal} KB per cached deal ({cached} cached)" if per_deal is not None else "")
        )
        figures.record("worker_rss", worker_rss, "MB", open_deals=opened, **params)
        figures.record("server_rss", server_rss, "MB", open_deals=opened)
        if per_deal is not None:
            figures.record("worker_rss_per_cached_deal", per_deal, "KB", open_deals=opened, cached=cached, **params)
    figures.say(f"opening {opened} deals took {opening_seconds:.1f} s ({opened / opening_seconds:.1f} deals/s)")
    figures.record("open_seconds", round(opening_seconds, 1), "s", deals=opened, in_flight=IN_FLIGHT, **params)


async def sandbox_cost(stack: ChaosStack, spec: DealSpec, count: int, figures: Report) -> None:
    """RSS per cached deal with the workflows package shared by every run and imported per run."""
    assert stack.stack.mail is not None
    await stack.worker.stop()
    for imports in ("shared", "per-run"):
        queue = f"memory-sandbox-{imports}"
        environment = {
            **stack.environment,
            "DEALFLOW_TASK_QUEUE": queue,
            "DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS": str(max(count, IN_FLIGHT)),
            "DEALFLOW_WORKER_SANDBOX_IMPORTS": imports,
        }
        child = ChildProcess(
            f"worker ({imports})",
            [sys.executable, worker_module.__file__],
            environment,
            stack.stack.settings.home / f"worker-{imports}.log",
            _polling,
        )
        await child.start()
        try:
            assert child.process is not None
            worker = psutil.Process(child.process.pid)
            await quiet(worker)
            base = rss_mb(worker)
            deals = Deals(stack.stack.client, spec, stack.stack.mail, queue, f"sandbox-{imports}")
            await deals.open(0, count)
            await quiet(worker)
            after = rss_mb(worker)
        finally:
            await child.stop()
        per_deal = round((after - base) * 1024 / count, 1)
        figures.say(
            f"sandbox imports {imports}: worker {base} MB idle, {after} MB with {count} cached deals = "
            f"{per_deal} KB per cached deal"
        )
        figures.record("worker_rss_per_cached_deal", per_deal, "KB", cached=count, **worker_params(environment))


async def _polling(child: ChildProcess) -> bool:
    return "worker polling task queue" in child.new_output()


async def run(deals: int, sandbox_deals: int, figures: Report, home: Path) -> None:
    spec = load_spec(EXAMPLE)
    async with chaos_stack(home) as stack:
        await open_deals_measuring(stack, spec, deals, figures)
        if sandbox_deals:
            await sandbox_cost(stack, spec, sandbox_deals, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000, help="open deals to reach (default 10,000)")
    parser.add_argument(
        "--sandbox-deals", type=int, default=1_000, help="cached deals per sandbox variant (0: skip that part)"
    )
    parser.add_argument("--quick", action="store_true", help="1,000 deals, 200 per sandbox variant")
    parser.add_argument("--jsonl", type=Path, help="append the JSON lines to this file")
    args = parser.parse_args()
    if args.quick:
        args.deals, args.sandbox_deals = 1_000, 200
    if args.deals < 1 or args.sandbox_deals < 0:
        parser.error("--deals must be at least 1 and --sandbox-deals at least 0")
    figures = Report("memory", args.jsonl)
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as home:
        asyncio.run(run(args.deals, args.sandbox_deals, figures, Path(home)))


if __name__ == "__main__":
    main()
