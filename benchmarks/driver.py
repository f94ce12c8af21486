"""Deals driven from start to completed through the public interfaces, every step timed.

Each deal is a straight deal of `dealflow demo`, played by the demo's own people: the client
opens the portal link mailed to them and signs there; pays each milestone's Checkout Session (the
link in the payment mail) with the test card through the sandbox's control API, which is what its
hosted page does; the vendor takes the signed work order at its fulfilment URL and hands in a
file through the vendor API; the client approves on the portal. Nothing polls Temporal: people
wait for mail and work orders as they arrive, an update answers once the deal took it, and the
end is the workflow's result (one long poll). Every simulated client has its own loopback
address, as people do, so the portal's per-address rate limit sees a hundred people, not one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from benchmarks.beside import beside
from benchmarks.figures import Report
from benchmarks.mail import MailIndex
from benchmarks.readmodel import ReadModelWatch
from benchmarks.stack import BenchStack
from dealflow.contract import STATUS
from dealflow.messages import DealStage, DealStatus
from dealflow.models import DealSpec, Policy
from demo.actors import DemoClient, DemoVendor
from demo.browser import Browser
from demo.http import DemoStepFailed
from demo.plays import CARD_OK
from demo.specs import WEBSITE
from starter import start_deal
from stripe_sandbox.control import SandboxControl

log = logging.getLogger("dealflow.benchmarks")

#: How long one person waits for the deal to move before the deal counts as stuck.
STEP_TIMEOUT = 300.0
#: How long the one `status` query of a failed deal may take (its worker may be gone).
QUERY_TIMEOUT = timedelta(seconds=10)
#: After a 503, how long a person waits for the mail their action brings before acting again.
EVIDENCE_TIMEOUT = 60.0
#: Simulated clients share this many loopback addresses (127.0.1.1 ...), a few deals each.
CLIENT_ADDRESSES = 64


def _task_failure(event: HistoryEvent) -> str:
    attributes = event.workflow_task_failed_event_attributes
    cause = WorkflowTaskFailedCause.Name(attributes.cause).removeprefix(
        "WORKFLOW_TASK_FAILED_CAUSE_"
    )
    return f"its workflow task failed ({cause}): {attributes.failure.message.splitlines()[0]}"


def deal_spec(deal_id: str, milestones: int, fulfillment_url: str) -> DealSpec:
    """The demo's website deal with `milestones` milestones, on the default (real-life) windows,
    so no reminder or reconciliation timer fires while the benchmark runs."""
    demo = WEBSITE.spec(deal_id, 1, fulfillment_url, Policy(demo=True))
    return DealSpec.model_validate(
        {
            **demo.model_dump(),
            "milestones": [
                {
                    "key": f"m{n}",
                    "title": f"Milestone {n}",
                    "amount": 150_000 * n,
                    "due_in_days": 14 * n,
                }
                for n in range(1, milestones + 1)
            ],
        }
    )


def client_address(number: int) -> str:
    return f"127.0.1.{1 + number % CLIENT_ADDRESSES}"


@dataclass
class MilestoneTimes:
    """When each step of one milestone was done (`link`, `paid`, `funded`, `work_order`,
    `delivered`, `approved`), in seconds since the cast came on."""

    key: str
    #: funded + released, as the read model shows it once this milestone is funded.
    collected: int
    at: dict[str, float] = field(default_factory=dict)


@dataclass
class DealTimes:
    """When the deal was `started`, `signed` and `completed`, and each milestone's steps."""

    deal_id: str
    milestones: list[MilestoneTimes]
    at: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Cast:
    """The people every deal of a run shares: the clients' browsers (one per address), their
    mail, the vendors' server, and the card the clients pay with."""

    bench: BenchStack
    mail: MailIndex
    vendor: DemoVendor
    sandbox: SandboxControl
    browsers: list[Browser]
    watch: ReadModelWatch
    t0: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 4)

    def since_start(self, monotonic: float) -> float:
        return round(monotonic - self.t0, 4)


@asynccontextmanager
async def deal_cast(bench: BenchStack) -> AsyncIterator[Cast]:
    assert bench.stack.mail is not None
    settings = bench.stack.settings
    async with AsyncExitStack() as resources:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
        browsers = []
        for number in range(CLIENT_ADDRESSES):
            transport = httpx.AsyncHTTPTransport(
                local_address=client_address(number), limits=limits
            )
            http = await resources.enter_async_context(
                httpx.AsyncClient(transport=transport, timeout=60)
            )
            browsers.append(Browser(http))
        vendor_http = await resources.enter_async_context(
            httpx.AsyncClient(timeout=60, limits=limits)
        )
        mail = MailIndex(bench.stack.mail)
        await resources.enter_async_context(beside(mail.read_forever()))
        vendor = await resources.enter_async_context(
            DemoVendor(
                vendor_http,
                bridge_url=bench.stack.bridge_url,
                vendor_token=settings.require("DEALFLOW_VENDOR_TOKEN"),
                delivery_secret=settings.require("DEALFLOW_DELIVERY_SECRET"),
            ).serving()
        )
        sandbox = await resources.enter_async_context(
            SandboxControl(
                bench.sandbox_url, token=settings.require("DEALFLOW_SANDBOX_TOKEN"), timeout=60
            )
        )
        watch = ReadModelWatch(bench.stack.pool)
        await resources.enter_async_context(beside(watch.poll_forever()))
        yield Cast(bench, mail, vendor, sandbox, browsers, watch)


class DealRun:
    """One deal and its client, played step by step (`drive` plays them all)."""

    def __init__(
        self, cast: Cast, spec: DealSpec, number: int, *, watch_funding: bool = False
    ) -> None:
        self.cast = cast
        self.spec = spec
        self.watch_funding = watch_funding
        self.client = DemoClient(
            cast.browsers[number % len(cast.browsers)],
            cast.mail,
            spec.deal_id,
            spec.client.name,
            timeout=STEP_TIMEOUT,
        )
        collected = 0
        milestones = []
        for milestone in spec.milestones:
            collected += milestone.amount
            milestones.append(MilestoneTimes(milestone.key, collected))
        self.times = DealTimes(spec.deal_id, milestones)
        self.handle: WorkflowHandle | None = None

    async def start_and_sign(self) -> None:
        cast = self.cast
        self.handle = await start_deal(
            cast.bench.stack.client, self.spec, cast.bench.stack.settings.task_queue
        )
        self.times.at["started"] = cast.now()
        await self._patiently(self.client.sign, "payment_link", 1)
        self.times.at["signed"] = cast.now()

    async def payment_session(self, number: int) -> str:
        """The Checkout Session of milestone `number`, once its payment link was mailed."""
        session = await self.cast.mail.checkout_session(self.spec.deal_id, number, STEP_TIMEOUT)
        self.times.milestones[number].at["link"] = self.cast.now()
        return session

    async def pay(self, number: int, session: str) -> asyncio.Future[float] | None:
        """Pay as the hosted page does; with `watch_funding`, a future of when the read model
        shows the milestone funded."""
        times = self.times.milestones[number]
        funded = (
            self.cast.watch.collected(self.spec.deal_id, times.collected)
            if self.watch_funding
            else None
        )
        answer = await self.cast.sandbox.pay(session, CARD_OK)
        times.at["paid"] = self.cast.now()
        if answer.get("outcome") != "paid":
            raise DemoStepFailed(f"the sandbox answered {answer.get('outcome')} for {session}")
        return funded

    async def work_and_approve(self, number: int) -> None:
        times, cast, deal_id = self.times.milestones[number], self.cast, self.spec.deal_id
        milestone = self.spec.milestones[number]
        await cast.vendor.wait_for_work_order(deal_id, milestone.key, 0, STEP_TIMEOUT)
        times.at["work_order"] = cast.now()
        await self._patiently(
            lambda: cast.vendor.deliver(deal_id, milestone.key, 0, f"{milestone.title}: done"),
            "deliverable_ready",
            number + 1,
        )
        times.at["delivered"] = cast.now()
        await self._patiently(
            lambda: self.client.approve(milestone.key), "approved_receipt", number + 1
        )
        times.at["approved"] = cast.now()

    async def _patiently(
        self, act: Callable[[], Awaitable[object]], mail_kind: str, count: int
    ) -> None:
        """Do a person's action. When the bridge answers 503 (the deal did not answer in time:
        it may still take the action), wait for the mail the action brings before acting again,
        as a person would look at their mail before clicking twice."""
        deadline = asyncio.get_running_loop().time() + STEP_TIMEOUT
        while True:
            try:
                await act()
                return
            except DemoStepFailed as error:
                if "HTTP 503" not in str(error) or asyncio.get_running_loop().time() > deadline:
                    raise
            if await self.cast.mail.received(self.spec.deal_id, mail_kind, count, EVIDENCE_TIMEOUT):
                return

    async def finish(self) -> None:
        assert self.handle is not None
        final: DealStatus = await asyncio.wait_for(self.handle.result(), STEP_TIMEOUT)
        self.times.at["completed"] = self.cast.now()
        if final.stage != DealStage.COMPLETED:
            raise DemoStepFailed(f"the deal ended {final.stage}")

    async def drive(self) -> DealTimes:
        """Every step, start to completed; a failure is kept as the deal's error, not raised."""
        try:
            await self.start_and_sign()
            for number in range(len(self.spec.milestones)):
                funded = await self.pay(number, await self.payment_session(number))
                await self.work_and_approve(number)
                if funded is not None:
                    self.times.milestones[number].at["funded"] = self.cast.since_start(
                        await asyncio.wait_for(funded, STEP_TIMEOUT)
                    )
            await self.finish()
        except Exception as error:  # one broken deal must not hide how the others went
            log.exception("deal %s failed", self.spec.deal_id)
            self.times.error = f"{type(error).__name__}: {error}; {await self._where()}"
        return self.times

    async def _last_task_failure(self) -> str:
        assert self.handle is not None
        failed = [
            event
            async for event in self.handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        ]
        return _task_failure(failed[-1]) if failed else "no workflow task failed"

    async def _where(self) -> str:
        """Where a failed deal stands, from its `status` (one query, only when a deal failed)."""
        if self.handle is None:
            return "it never started"
        try:
            status: DealStatus = await self.handle.query(
                STATUS, result_type=DealStatus, rpc_timeout=QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError) as error:
            return f"its status could not be read ({error}); {await self._last_task_failure()}"
        milestones = ", ".join(f"{m.key} {m.state}" for m in status.milestones)
        last = "; ".join(f"{entry.kind}: {entry.message}" for entry in status.timeline[-3:])
        return f"the deal is {status.stage} ({milestones}); anomalies: {status.anomalies}; last: {last}"


async def drive_deals(
    cast: Cast, prefix: str, count: int, milestones: int, *, watch_funding: bool = False
) -> list[DealTimes]:
    """`count` deals of `milestones` milestones, all at once, each from start to completed."""
    runs = [
        DealRun(
            cast,
            deal_spec(f"{prefix}-{n:04d}", milestones, cast.vendor.fulfillment_url),
            n,
            watch_funding=watch_funding,
        )
        for n in range(count)
    ]
    return list(await asyncio.gather(*(run.drive() for run in runs)))


async def one_deal(cast: Cast, deal_id: str, milestones: int) -> list[HistoryEvent]:
    """Drive one deal alone to completed; its history."""
    run = DealRun(cast, deal_spec(deal_id, milestones, cast.vendor.fulfillment_url), 0)
    require_completed([await run.drive()])
    assert run.handle is not None
    return list((await run.handle.fetch_history()).events)


def require_completed(times: list[DealTimes]) -> None:
    """Stop the benchmark (exit 1) if the deal did not complete: there is nothing to measure."""
    if failed := [f"{t.deal_id}: {t.error}" for t in times if t.error]:
        raise SystemExit(
            f"{len(failed)} of {len(times)} deals did not complete; the first: {failed[0]}"
        )


def completed(times: list[DealTimes], report: Report) -> list[DealTimes]:
    """The deals that completed; the others are a problem of the run, named with where they stand."""
    done = [t for t in times if not t.error]
    if len(done) < len(times):
        first = next(t for t in times if t.error)
        report.problem(
            f"{len(times) - len(done)} of {len(times)} deals did not complete; {first.deal_id}: {first.error}"
        )
    if not done:
        raise SystemExit("no deal completed: nothing to measure")
    return done
