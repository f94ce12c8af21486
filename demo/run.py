"""`dealflow demo [--deals N]`: deals from SOW to receipt, played by simulated people.

On the running `dealflow dev` stack (found through `.dealflow/dev-stack.json` and its bridge's
`/healthz`), or on one started in this process for the demo. Each deal is started like
`dealflow start` would, then its client, vendor and operator act only through the real
interfaces (mail, portal forms, hosted checkout, vendor and admin APIs, a Temporal update), while
a live table shows every deal's stage from its `status` query. The end is a table of every deal
and its money; the exit code is 0 only if every deal ended as its story says.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import sys
import time

from rich.console import Console
from rich.live import Live

from dealflow.serve import PortInUse
from dealflow.settings import ConfigError, Settings, load_settings
from demo.cast import (
    STARTED,
    DemoCredentials,
    DemoReport,
    DemoTarget,
    demo_cast,
    onboard_vendors,
    perform,
)
from demo.scenarios import scenarios_for
from demo.tables import live_view, stories, summary
from devstack.logs import setup_dev_logging
from devstack.plan import DevStackError, load_ports, make_plan
from devstack.run import StopSignals, banner, run_dev
from devstack.runtime import bridge_alive, connect_runtime, read_runtime
from starter import DealExists, start_deal

MAX_DEALS = 50


def _run_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4))


async def run_demo(target: DemoTarget, count: int, *, console: Console, live: bool = True) -> DemoReport:
    """Start `count` deals and play them to their ends; returns what happened to each."""
    if not 1 <= count <= MAX_DEALS:
        raise ValueError(f"--deals must be between 1 and {MAX_DEALS}")
    started = time.monotonic()
    run_id = _run_id()
    async with demo_cast(target) as cast:
        on_step = None if live else (lambda deal_id, step: console.print(f"{deal_id}: {step}", highlight=False))
        runs = [
            cast.deal_run(scenario, f"demo-{run_id}-{number:02d}", number, on_step=on_step)
            for number, scenario in enumerate(scenarios_for(count), start=1)
        ]
        await onboard_vendors(target, runs)
        for run in runs:
            try:
                await start_deal(
                    target.temporal,
                    run.play.spec,
                    target.task_queue,
                    target.credentials.client_search_secret,
                )
            except DealExists as error:
                run.error, run.done = str(error), True
            else:
                run.play.say(STARTED)
        plays = asyncio.gather(*(perform(run) for run in runs if not run.done))
        if live:
            with Live(live_view(runs, started), console=console, refresh_per_second=4) as view:
                while not plays.done():
                    await asyncio.wait([plays], timeout=0.25)
                    view.update(live_view(runs, started))
        await plays
        first_link = next((link for run in runs if (link := cast.mailbox.latest_link(run.play.spec.deal_id))), None)
        return DemoReport(runs, time.monotonic() - started, dict(cast.mailbox.counts), first_link)


# --------------------------------------------------------------------------- the command


async def _play_and_report(target: DemoTarget, count: int, console: Console) -> int:
    live = console.is_terminal
    report = await run_demo(target, count, console=console, live=live)
    if live:  # without the live table, every step was printed as it happened
        console.print(stories(report), highlight=False, soft_wrap=True)
    console.print(summary(report, target), highlight=False, soft_wrap=True)
    if not report.ok:
        console.print("[red]Some deals did not end as their story says (see above).[/red]")
    return 0 if report.ok else 1


async def _join_running(settings: Settings, count: int, console: Console) -> int | None:
    """Run on the dev stack of another process, if one answers; None when there is none."""
    runtime = read_runtime(settings.home)
    if runtime is None or not await bridge_alive(runtime.bridge_url):
        return None
    if runtime.mail_dir is None or runtime.sandbox_url is None:
        raise DevStackError("the running dev stack uses SMTP_URL or STRIPE_API_KEY; the demo needs the sink and sandbox")
    console.print(f"Using the dev stack running in process {runtime.pid}.")
    target = DemoTarget(
        temporal=await connect_runtime(runtime, settings),
        bridge_url=runtime.bridge_url,
        sandbox_url=runtime.sandbox_url,
        mail_dir=runtime.mail_dir,
        task_queue=runtime.task_queue,
        credentials=DemoCredentials.from_settings(settings),
        temporal_ui_url=runtime.temporal_ui_url,
        public_url=runtime.public_url,
    )
    return await _play_and_report(target, count, console)


async def _demo(settings: Settings, count: int, keep_running: bool, console: Console) -> int:
    signals = StopSignals()
    try:
        setup_dev_logging(sys.stderr, level=logging.WARNING)
        joined = await _join_running(settings, count, console)
        if joined is not None:
            return joined
        return await _demo_in_process(settings, count, keep_running, console, signals)
    except asyncio.CancelledError:
        console.print("Stopped.")
        return 130


async def _demo_in_process(
    settings: Settings, count: int, keep_running: bool, console: Console, signals: StopSignals
) -> int:
    plan = make_plan(settings, load_ports())
    if plan.real_stripe or plan.smtp_url is not None:
        raise DevStackError(
            "the demo pays with the sandbox's test cards and reads the sink's mail: unset STRIPE_API_KEY and SMTP_URL"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    log_file = settings.home / "demo-stack.log"
    with log_file.open("a") as stream:
        setup_dev_logging(stream)
        console.print(f"Starting the dev stack in this process (its log: {log_file}) ...")
        async with run_dev(plan) as dev:
            code = await _play_and_report(DemoTarget.from_stack(dev.stack), count, console)
            if keep_running:
                console.print(banner(dev, heading="The dev stack stays up so you can look around."), highlight=False, soft_wrap=True)
                await signals.wait()
    return code


def main(deals: int, keep_running: bool | None) -> int:
    """`dealflow demo`; exit code 0 when every deal ended as expected, 1 if not, 2 on setup errors.
    By default the stack the demo started stays up (until Ctrl-C) when run from a terminal."""
    # Piped output (CI logs) gets lines wide enough for the tables instead of 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    err = Console(stderr=True)
    if keep_running is None:
        keep_running = sys.stdin.isatty()
    try:
        return asyncio.run(_demo(load_settings(), deals, keep_running, console))
    except PortInUse as error:
        err.print(
            f"[red]dealflow demo:[/red] {error}. If `dealflow dev` is running from another directory, "
            "run the demo there: it joins the running stack.",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    except (ConfigError, DevStackError) as error:
        err.print(f"[red]dealflow demo:[/red] {error}", highlight=False, soft_wrap=True)
        return 2
