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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from dealflow.messages import TERMINAL_STAGES, DealStatus, MilestoneState
from dealflow.models import format_money
from dealflow.serve import PortInUse
from dealflow.settings import ConfigError, Settings, load_settings
from demo.actors import (
    Browser,
    DemoClient,
    DemoOperator,
    DemoStepFailed,
    DemoVendor,
    MailBox,
)
from demo.scenarios import STEP_TIMEOUT, DealWatch, Play, Scenario, scenarios_for
from devstack.logs import setup_dev_logging
from devstack.plan import DevStackError, load_ports, make_plan
from devstack.run import StopSignals, banner, run_dev
from devstack.runtime import bridge_alive, connect_runtime, read_runtime
from devstack.stack import Stack
from starter import DealExists, start_deal

log = logging.getLogger("dealflow.demo")

MAX_DEALS = 50
#: However the deals go, the demo ends within this (N=10 takes well under two minutes).
DEMO_TIMEOUT = 600.0


@dataclass(frozen=True)
class DemoTarget:
    """A running stack, as the demo's people reach it."""

    temporal: Client
    bridge_url: str
    mail_dir: Path
    task_queue: str
    admin_token: str
    vendor_token: str
    delivery_secret: str
    temporal_ui_url: str
    public_url: str

    @classmethod
    def from_stack(cls, stack: Stack) -> DemoTarget:
        settings = stack.settings
        if stack.mail is None or stack.sandbox_url is None:
            raise DevStackError(
                "the demo needs the SMTP sink and the Stripe sandbox: unset SMTP_URL and STRIPE_API_KEY"
            )
        return cls(
            temporal=stack.client,
            bridge_url=stack.bridge_url,
            mail_dir=stack.mail.directory,
            task_queue=settings.task_queue,
            admin_token=settings.require("DEALFLOW_ADMIN_TOKEN"),
            vendor_token=settings.require("DEALFLOW_VENDOR_TOKEN"),
            delivery_secret=settings.require("DEALFLOW_DELIVERY_SECRET"),
            temporal_ui_url=settings.temporal_ui_url,
            public_url=settings.public_url,
        )


@dataclass
class DealRun:
    scenario: Scenario
    play: Play
    watch: DealWatch
    error: str | None = None
    done: bool = False

    @property
    def status(self) -> DealStatus | None:
        return self.watch.status

    @property
    def ok(self) -> bool:
        return self.done and self.error is None


@dataclass
class DemoReport:
    runs: list[DealRun]
    seconds: float
    mails: dict[str, int] = field(default_factory=dict)
    portal_link: str | None = None

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)


#: The first step of every deal, said once its workflow has started.
STARTED = "started; the SOW is on its way to the client"


@dataclass
class DemoCast:
    """The people every deal of a run shares: one browser and mailbox for the clients, the
    vendors' server and the operator."""

    target: DemoTarget
    browser: Browser
    mailbox: MailBox
    vendor: DemoVendor
    operator: DemoOperator
    step_timeout: float = STEP_TIMEOUT

    def deal_run(
        self, scenario: Scenario, deal_id: str, number: int, *, on_step: Callable[[str, str], None] | None = None
    ) -> DealRun:
        """One deal of `scenario`, cast and ready to start."""
        spec = scenario.make_spec(deal_id, number, self.vendor.fulfillment_url, scenario.policy)
        client = DemoClient(self.browser, self.mailbox, deal_id, spec.client.name, timeout=self.step_timeout)
        watch = DealWatch(self.target.temporal, deal_id, timeout=self.step_timeout)
        play = Play(spec, client, self.vendor, self.operator, watch, on_step=on_step)
        return DealRun(scenario, play, watch)


@asynccontextmanager
async def demo_cast(target: DemoTarget, *, step_timeout: float = STEP_TIMEOUT) -> AsyncIterator[DemoCast]:
    """The people, reading mail and serving the vendors' side until the block exits."""
    async with AsyncExitStack() as resources:
        http = await resources.enter_async_context(
            httpx.AsyncClient(timeout=30, headers={"User-Agent": "dealflow-demo (simulated client)"})
        )
        mailbox = await resources.enter_async_context(MailBox(target.mail_dir).watching())
        vendor = await resources.enter_async_context(
            DemoVendor(
                http, bridge_url=target.bridge_url, vendor_token=target.vendor_token, delivery_secret=target.delivery_secret
            ).serving()
        )
        operator = DemoOperator(http, bridge_url=target.bridge_url, admin_token=target.admin_token)
        yield DemoCast(target, Browser(http), mailbox, vendor, operator, step_timeout)


def _run_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4))


async def perform(run: DealRun, timeout: float = DEMO_TIMEOUT) -> None:
    """Play the story, then check the end: the stage and the money, to the cent."""
    poller = asyncio.create_task(run.watch.poll_forever())
    spec = run.play.spec
    released, refunded = run.scenario.expected_money(spec)
    try:
        async with asyncio.timeout(timeout):
            await run.scenario.play(run.play)
            await run.watch.until(
                f"{run.scenario.end} with {format_money(released, spec.currency)} released and "
                f"{format_money(refunded, spec.currency)} refunded",
                lambda s: s.stage == run.scenario.end and (s.money.released, s.money.refunded) == (released, refunded),
                timeout=30,
            )
    except DemoStepFailed as error:
        run.error = str(error)
    except TimeoutError:
        run.error = f"not finished after {timeout:.0f}s"
    except Exception as error:  # one broken deal must not hide how the others ended
        log.exception("deal %s failed", spec.deal_id)
        run.error = f"{type(error).__name__}: {error}"
    finally:
        run.done = True
        if run.watch.status is None or run.watch.status.stage not in TERMINAL_STAGES:
            poller.cancel()
        await asyncio.wait([poller])


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
        for run in runs:
            try:
                await start_deal(target.temporal, run.play.spec, target.task_queue)
            except DealExists as error:
                run.error, run.done = str(error), True
            else:
                run.play.say(STARTED)
        plays = asyncio.gather(*(perform(run) for run in runs if not run.done))
        if live:
            with Live(_live_view(runs, started), console=console, refresh_per_second=4) as view:
                while not plays.done():
                    await asyncio.wait([plays], timeout=0.25)
                    view.update(_live_view(runs, started))
        await plays
        first_link = next((link for run in runs if (link := cast.mailbox.latest_link(run.play.spec.deal_id))), None)
        return DemoReport(runs, time.monotonic() - started, dict(cast.mailbox.counts), first_link)


# --------------------------------------------------------------------------- rendering


_STAGE_STYLE = {"completed": "green", "cancelled": "yellow", "expired": "red", "disputed": "magenta"}


def _money(run: DealRun, attribute: str) -> str:
    status = run.status
    return format_money(getattr(status.money, attribute), status.currency) if status else ""


def _progress(status: DealStatus | None) -> str:
    if status is None:
        return ""
    total = len(status.milestones)
    released = sum(1 for m in status.milestones if m.state == MilestoneState.RELEASED)
    active = next(
        (m for m in status.milestones if m.state not in (MilestoneState.RELEASED, MilestoneState.PENDING)), None
    )
    text = f"{released}/{total} released"
    return f"{text} · {active.key}: {active.state}" if active else text


def _live_view(runs: Sequence[DealRun], started: float) -> Table:
    table = Table(
        title=f"dealflow demo · {len(runs)} deals · demo policy (windows in seconds) · sandbox money · "
        f"{time.monotonic() - started:.0f}s",
        title_justify="left",
        expand=True,
    )
    for column in ("deal", "story", "stage", "milestones", "held", "released", "refunded", "latest step"):
        table.add_column(column, no_wrap=column not in ("story", "latest step"))
    for run in runs:
        status = run.status
        stage = str(status.stage) if status else "starting"
        latest = Text(run.error, style="red") if run.error else Text(run.play.steps[-1] if run.play.steps else "")
        table.add_row(
            run.play.spec.deal_id,
            run.scenario.story,
            Text(stage, style=_STAGE_STYLE.get(stage, "cyan")),
            _progress(status),
            _money(run, "funded"),
            _money(run, "released"),
            _money(run, "refunded"),
            latest,
        )
    return table


def summary(report: DemoReport, target: DemoTarget) -> Group:
    """Every deal's end and money, the money by state per currency, and where to look."""
    deals = Table(title=f"{len(report.runs)} demo deals in {report.seconds:.0f}s", title_justify="left")
    for column in ("deal", "story", "end", "contract", "held", "released", "refunded", "client mails"):
        deals.add_column(column, justify="left" if column in ("deal", "story", "end") else "right")
    totals: dict[str, dict[str, int]] = {}
    for run in report.runs:
        status = run.status
        expected = str(run.scenario.end)
        if run.ok:
            end = Text(f"✓ {expected}", style="green")
        else:
            end = Text(f"✗ {status.stage if status else 'not started'} (expected {expected})", style="red")
        deals.add_row(
            run.play.spec.deal_id,
            run.scenario.story,
            end,
            format_money(status.money.contract, status.currency) if status else "",
            _money(run, "funded"),
            _money(run, "released"),
            _money(run, "refunded"),
            str(report.mails.get(run.play.spec.deal_id, 0)),
        )
        if status:
            money = totals.setdefault(status.currency, {"contract": 0, "funded": 0, "released": 0, "refunded": 0})
            for key in money:
                money[key] += getattr(status.money, key)
    by_state = Table(title="Money by state (sandbox money: nothing real moved)", title_justify="left")
    for column in ("currency", "contract", "funded (held)", "released (vendors paid)", "refunded (clients)"):
        by_state.add_column(column, justify="right")
    for currency, money in sorted(totals.items()):
        by_state.add_row(
            currency.upper(), *(format_money(money[k], currency) for k in ("contract", "funded", "released", "refunded"))
        )
    ui = target.temporal_ui_url.rstrip("/")
    query = quote("WorkflowType='DealWorkflow'")
    where = [
        "",
        "[bold]Where to look[/bold]",
        f"  Temporal UI   {ui}/namespaces/{target.temporal.namespace}/workflows?query={query}  (with DealStage)",
        f"  Mailbox       {target.public_url.rstrip('/')}/dev/mail  (every mail; files in {target.mail_dir})",
    ]
    if report.portal_link:
        where.append(f"  A portal      {report.portal_link}")
    where.append("  Reports       dealflow report   ·   dealflow list --stage completed")
    problems = [Text(f"{run.play.spec.deal_id}: {run.error}", style="red") for run in report.runs if run.error]
    return Group(deals, *problems, Text(""), by_state, Text.from_markup("\n".join(where)))


# --------------------------------------------------------------------------- the command


async def _play_and_report(target: DemoTarget, count: int, console: Console) -> int:
    report = await run_demo(target, count, console=console, live=console.is_terminal)
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
        temporal=await connect_runtime(runtime),
        bridge_url=runtime.bridge_url,
        mail_dir=runtime.mail_dir,
        task_queue=runtime.task_queue,
        admin_token=settings.require("DEALFLOW_ADMIN_TOKEN"),
        vendor_token=settings.require("DEALFLOW_VENDOR_TOKEN"),
        delivery_secret=settings.require("DEALFLOW_DELIVERY_SECRET"),
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
