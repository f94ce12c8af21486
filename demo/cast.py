"""The cast and the deals it plays: who acts for a run, and how one deal is performed and checked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client

from dealflow.messages import DealStatus, DealSummary
from dealflow.money import format_money
from dealflow.settings import Settings
from demo.actors import DemoBank, DemoClient, DemoOperator, DemoVendor
from demo.browser import Browser
from demo.http import DemoStepFailed
from demo.mailbox import MailBox
from demo.plays import Play
from demo.scenarios import Scenario
from demo.watch import STEP_TIMEOUT, DealWatch
from devstack.plan import DevStackError
from devstack.stack import Stack
from stripe_sandbox.control import SandboxControl

log = logging.getLogger("dealflow.demo")

#: However the deals go, the demo ends within this (N=10 takes well under two minutes).
DEMO_TIMEOUT = 600.0


@dataclass(frozen=True)
class DemoCredentials:
    """What the demo's vendor and operator show the bridge: the stack's own tokens and secret."""

    admin_token: str
    delivery_secret: str
    #: What the clients' bank (the sandbox's controls) needs: it pays, settles and disputes.
    sandbox_token: str
    #: Keys each deal's `DealClient` search attribute, as `dealflow start` does.
    client_search_secret: str

    @classmethod
    def from_settings(cls, settings: Settings) -> DemoCredentials:
        return cls(
            admin_token=settings.require("DEALFLOW_ADMIN_TOKEN"),
            delivery_secret=settings.require("DEALFLOW_DELIVERY_SECRET"),
            sandbox_token=settings.require("DEALFLOW_SANDBOX_TOKEN"),
            client_search_secret=settings.require("DEALFLOW_CLIENT_SEARCH_SECRET"),
        )


@dataclass(frozen=True)
class DemoTarget:
    """A running stack, as the demo's people reach it."""

    temporal: Client
    bridge_url: str
    sandbox_url: str
    mail_dir: Path
    task_queue: str
    credentials: DemoCredentials
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
            sandbox_url=stack.sandbox_url,
            mail_dir=stack.mail.directory,
            task_queue=settings.task_queue,
            credentials=DemoCredentials.from_settings(settings),
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
    def summary(self) -> DealSummary | None:
        """Where the deal stood when last asked."""
        return self.watch.summary

    @property
    def status(self) -> DealStatus | None:
        """The whole deal as it ended (None while it runs)."""
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
    vendors' server, the operator and the clients' bank."""

    target: DemoTarget
    browser: Browser
    mailbox: MailBox
    vendor: DemoVendor
    operator: DemoOperator
    bank: DemoBank
    step_timeout: float = STEP_TIMEOUT

    def deal_run(
        self, scenario: Scenario, deal_id: str, number: int, *, on_step: Callable[[str, str], None] | None = None
    ) -> DealRun:
        """One deal of `scenario`, cast and ready to start."""
        spec = scenario.make_spec(deal_id, number, self.vendor.fulfillment_url, scenario.policy)
        client = DemoClient(self.browser, self.mailbox, deal_id, spec.client.name, timeout=self.step_timeout)
        watch = DealWatch(self.target.temporal, deal_id, timeout=self.step_timeout)
        play = Play(spec, client, self.vendor, self.operator, self.bank, watch, on_step=on_step)
        return DealRun(scenario, play, watch)


async def onboard_vendors(target: DemoTarget, runs: Sequence[DealRun]) -> None:
    """Each vendor as an account (the admin API), with a key of their own that reaches only
    their deals; each deal's spec names its vendor's id. A Connect vendor's account must exist
    (on Stripe, and so in the sandbox) before a release transfers to it: registered under the id
    its spec names, as if onboarded before."""
    vendors = {str(run.play.spec.vendor.email): run.play.spec.vendor for run in runs}
    enrolled = {}
    async with SandboxControl(target.sandbox_url, token=target.credentials.sandbox_token) as sandbox:
        for email, vendor in vendors.items():
            if vendor.stripe_account is not None:
                await sandbox.create_account(vendor.stripe_account, email=email)
            enrolled[email] = await runs[0].play.operator.enrol_vendor(vendor.name, email, vendor.stripe_account)
    for run in runs:
        spec = run.play.spec
        vendor_id, api_key = enrolled[str(spec.vendor.email)]
        run.play.spec = spec.model_copy(update={"vendor": spec.vendor.model_copy(update={"vendor_id": vendor_id})})
        run.play.vendor.sign_in(spec.deal_id, api_key)


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
                http,
                bridge_url=target.bridge_url,
                delivery_secret=target.credentials.delivery_secret,
            ).serving()
        )
        operator = DemoOperator(http, bridge_url=target.bridge_url, admin_token=target.credentials.admin_token)
        control = SandboxControl(target.sandbox_url, token=target.credentials.sandbox_token)
        bank = DemoBank(await resources.enter_async_context(control))
        yield DemoCast(target, Browser(http), mailbox, vendor, operator, bank, step_timeout)


async def perform(run: DealRun, timeout: float = DEMO_TIMEOUT) -> None:
    """Play the story, then check the end: the stage and the money, to the cent."""
    poller = asyncio.create_task(run.watch.poll_forever())
    try:
        async with asyncio.timeout(timeout):
            await run.scenario.play(run.play)
            # The terms in force at the end: a change order may have changed them.
            spec = run.play.spec
            released, refunded, fees = run.scenario.expected_money(spec)
            await run.watch.until(
                f"{run.scenario.end} with {format_money(released, spec.currency)} released "
                f"(platform fees {format_money(fees, spec.currency)}) and "
                f"{format_money(refunded, spec.currency)} refunded",
                lambda s: s.stage == run.scenario.end
                and (s.money.released, s.money.platform_fees, s.money.refunded) == (released, fees, refunded),
                timeout=30,
            )
    except DemoStepFailed as error:
        run.error = str(error)
    except TimeoutError:
        run.error = f"not finished after {timeout:.0f}s"
    except Exception as error:  # one broken deal must not hide how the others ended
        log.exception("deal %s failed", run.play.spec.deal_id)
        run.error = f"{type(error).__name__}: {error}"
    finally:
        run.done = True
        if run.watch.status is None:
            poller.cancel()
        await asyncio.wait([poller])
