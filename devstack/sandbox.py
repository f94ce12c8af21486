"""`dealflow sandbox`: serve the offline Stripe alone on a port and say how to point dealflow at it."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace

from dealflow.serve import check_port_free, serve_app
from stripe_sandbox.app import create_app
from stripe_sandbox.config import DEFAULT_PORT, SandboxConfig


def banner(
    base_url: str, webhook_url: str | None, webhook_secret: str, api_key: str, control_token: str
) -> str:
    return "\n".join(
        [
            "dealflow Stripe sandbox: an offline stand-in for Stripe; its money is sandbox money.",
            f"  STRIPE_API_BASE={base_url}",
            f"  STRIPE_API_KEY={api_key}   (the key this sandbox issued; it accepts no other)",
            f"  STRIPE_WEBHOOK_SECRET={webhook_secret}",
            f"  webhooks to: {webhook_url or 'nowhere yet (--webhook-url, or PUT ' + base_url + '/_sandbox/webhook)'}",
            f"  controls:    {base_url}/_sandbox  (Authorization: Bearer {control_token})",
        ]
    )


async def serve_sandbox(
    config: SandboxConfig, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> None:
    """Serve until SIGINT or SIGTERM; the state file is written before returning. Checkout links
    point at `host:port` unless `config.public_url` names another address."""
    check_port_free(host, port, "--port")
    app = create_app(replace(config, public_url=config.public_url or f"http://{host}:{port}"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve_app(app, host=host, port=port, log_level="warning") as base_url:
        state, token = app.state.store.state, app.state.control_token
        print(
            banner(base_url, state.webhook_url, state.webhook_secret, state.api_key, token),
            flush=True,
        )
        await stop.wait()
    saved = "; its state is saved" if config.state_file else ""
    print(f"sandbox stopped{saved}", flush=True)


def run_sandbox(config: SandboxConfig, *, port: int = DEFAULT_PORT) -> None:
    """Blocking entry point for the CLI; Ctrl-C or SIGTERM stops it. The controls need
    `config.control_token` (the CLI passes DEALFLOW_SANDBOX_TOKEN, generated per dev home)."""
    asyncio.run(serve_sandbox(config, port=port))
