"""The whole dealflow stack in one process: Postgres pool, SMTP sink, Stripe sandbox, worker, bridge.

`dealflow dev`, `dealflow demo` and the integration tests all run deals through this one piece,
so what the tests prove is what a user runs. Temporal itself is passed in as a connected client
(the dev server, a test server, or a real cluster).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from temporalio.client import Client

from bridge.app import create_app as create_bridge
from bridge.devmail import create_router as create_devmail_router
from dealflow.db import create_pool
from dealflow.egress import artifact_client
from dealflow.private_files import private_directory, write_private
from dealflow.secret_rules import ensure_dev_secrets
from dealflow.serve import free_port, serve_app
from dealflow.settings import Settings
from dealflow.temporal import with_data_converter
from devstack.mailsink import MailSink
from stripe_sandbox import SandboxConfig
from stripe_sandbox import create_app as create_sandbox
from stripe_sandbox.control import SandboxControl
from worker import build_activities, build_worker


@dataclass
class StackConfig:
    home: Path
    database_url: str
    task_queue: str = "deals"
    host: str = "127.0.0.1"
    bridge_port: int = 0
    sandbox_port: int = 0
    smtp_port: int = 0
    #: Real Stripe (test mode) instead of the sandbox, when a key is given.
    stripe_api_key: str | None = None
    #: With the key: a Stripe-compatible server to call instead of Stripe (a sandbox of its own
    #: process, as the benchmarks run it).
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = None
    #: An external SMTP server instead of the sink.
    smtp_url: str | None = None
    temporal_ui_url: str = "http://localhost:8233"
    #: Base of the links in mails; the bridge's own address when not given.
    public_url: str | None = None
    #: DEALFLOW_SECRET_KEY and the tokens; generated once per `home` when not given.
    secrets: dict[str, str] | None = None
    #: Seconds between the sandbox's webhook retries (small in tests).
    webhook_retry_base_seconds: float = 2.0
    run_worker: bool = True
    run_bridge: bool = True


@dataclass
class Stack:
    settings: Settings
    client: Client
    pool: asyncpg.Pool
    bridge_url: str
    sandbox_url: str | None
    mail: MailSink | None
    tasks: list[asyncio.Task] = field(default_factory=list)
    #: The bearer token of the sandbox's `/_sandbox/` controls (DEALFLOW_SANDBOX_TOKEN).
    sandbox_token: str | None = None

    def sandbox_control(self, *, timeout: float = 10.0) -> SandboxControl:
        """A client of this stack's sandbox controls: pay, dispute, move the clock, read money."""
        if self.sandbox_url is None or self.sandbox_token is None:
            raise RuntimeError("this stack runs no sandbox: it uses STRIPE_API_KEY")
        return SandboxControl(self.sandbox_url, token=self.sandbox_token, timeout=timeout)


def _sandbox_webhook_secret(home: Path) -> str:
    """One webhook secret per dev home, kept beside the other dev secrets."""
    path = home / "sandbox-webhook-secret"
    if not path.exists():
        private_directory(home)
        write_private(path, "whsec_" + secrets.token_hex(24))
    return path.read_text().strip()


@asynccontextmanager
async def run_stack(config: StackConfig, client: Client) -> AsyncIterator[Stack]:
    """Start every component; stop them all (in reverse) when the block exits."""
    async with AsyncExitStack() as stack:
        dev_secrets = config.secrets or ensure_dev_secrets(config.home)
        mail: MailSink | None = None
        smtp_url = config.smtp_url
        if smtp_url is None:
            mail = MailSink(config.home / "mail", host=config.host, port=config.smtp_port)
            await mail.start()
            stack.push_async_callback(mail.stop)
            smtp_url = mail.url

        bridge_port = config.bridge_port or free_port(config.host)
        bridge_url = f"http://{config.host}:{bridge_port}"
        sandbox_url: str | None = None
        sandbox_token = dev_secrets.get("DEALFLOW_SANDBOX_TOKEN") or secrets.token_urlsafe(32)
        api_key, api_base = config.stripe_api_key, config.stripe_api_base
        webhook_secret = config.stripe_webhook_secret
        if api_key is None:
            webhook_secret = _sandbox_webhook_secret(config.home)
            sandbox_port = config.sandbox_port or free_port(config.host)
            sandbox_app = create_sandbox(
                SandboxConfig(
                    public_url=f"http://{config.host}:{sandbox_port}",
                    webhook_url=f"{bridge_url}/webhooks/stripe",
                    webhook_secret=webhook_secret,
                    control_token=sandbox_token,
                    state_file=config.home / "sandbox.json",
                    retry_base_seconds=config.webhook_retry_base_seconds,
                )
            )
            sandbox_url = await stack.enter_async_context(
                serve_app(sandbox_app, host=config.host, port=sandbox_port)
            )
            api_key, api_base = sandbox_app.state.store.state.api_key, sandbox_url

        settings = Settings(
            _env_file=None,
            DEALFLOW_ENV="dev",
            DEALFLOW_HOME=config.home,
            DEALFLOW_TASK_QUEUE=config.task_queue,
            DATABASE_URL=config.database_url,
            STRIPE_API_KEY=api_key,
            STRIPE_API_BASE=api_base,
            STRIPE_WEBHOOK_SECRET=webhook_secret,
            SMTP_URL=smtp_url,
            DEALFLOW_PUBLIC_URL=config.public_url or bridge_url,
            DEALFLOW_TEMPORAL_UI_URL=config.temporal_ui_url,
            **dev_secrets,
        )
        pool = await create_pool(config.database_url)
        stack.push_async_callback(pool.close)
        http = await stack.enter_async_context(httpx.AsyncClient())
        artifact_http = await stack.enter_async_context(artifact_client(settings))

        client = with_data_converter(client, settings)
        result = Stack(
            settings, client, pool, bridge_url, sandbox_url, mail, sandbox_token=sandbox_token
        )
        if config.run_worker:
            activities = build_activities(settings, pool, http, artifact_http, stack)
            worker = build_worker(client, settings, activities)
            await stack.enter_async_context(worker)
        if config.run_bridge:
            bridge_app = create_bridge(settings=settings, pool=pool, temporal=client)
            if mail is not None:
                bridge_app.include_router(create_devmail_router(mail.directory))
            await stack.enter_async_context(serve_app(bridge_app, host=config.host, port=bridge_port))
        yield result
