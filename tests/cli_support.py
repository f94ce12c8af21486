"""Running the `dealflow` CLI as a user does: a process of its own, with only the settings a test
gives it (none of the developer's DEALFLOW_, TEMPORAL_, DATABASE_ or STRIPE_ variables leak in)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

_OWN_SETTINGS = ("DEALFLOW_", "TEMPORAL_", "DATABASE_", "STRIPE_")


def cli_environment(**settings: str) -> dict[str, str]:
    """This process's environment without dealflow's settings, plus `settings`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(_OWN_SETTINGS)}, **settings}


async def run_dealflow(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m dealflow.cli ARGS` in `env`; its exit code and output, never raising on failure."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dealflow.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
