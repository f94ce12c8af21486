"""`dealflow sandbox`: serve the offline Stripe alone on a port and say how to point dealflow at it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

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
    *,
    control_token: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    api_key: str | None = None,
    state_file: Path | None = None,
    public_url: str | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; the state file is written before returning."""
    check_port_free(host, port, "--port")
    config = SandboxConfig(
        public_url=public_url or f"http://{host}:{port}",
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        control_token=control_token,
        api_key=api_key,
        state_file=state_file,
    )
    app = create_app(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve_app(app, host=host, port=port, log_level="warning") as base_url:
        state = app.state.store.state
        print(
            banner(base_url, state.webhook_url, state.webhook_secret, state.api_key, control_token),
            flush=True,
        )
        await stop.wait()
    print("sandbox stopped; its state is saved" if state_file else "sandbox stopped", flush=True)


def run_sandbox(
    control_token: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    api_key: str | None = None,
    state_file: Path | None = None,
) -> None:
    """Blocking entry point for the CLI; Ctrl-C or SIGTERM stops it. The controls need
    `control_token` (the CLI passes DEALFLOW_SANDBOX_TOKEN, generated per dev home)."""
    asyncio.run(
        serve_sandbox(
            control_token=control_token,
            host=host,
            port=port,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            api_key=api_key,
            state_file=state_file,
        )
    )
