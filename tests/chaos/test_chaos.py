"""The project's own chaos run, small enough for CI: `dealflow chaos --deals 8 --seed 7` starts
its own stack, kills the worker, the bridge and Temporal while eight deals play (one of each
scenario), injects Stripe faults and forged webhooks, and must come out with every check green
(see chaos/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEALS, SEED = 8, 7
#: The whole run, stack start and checks included, on 2 cores: about a minute and a half.
RUN_TIMEOUT = 300

_SUMMARY = re.compile(
    rf"chaos: {DEALS} deals, seed {SEED}, [1-9]\d* worker kills, 1 temporal restart, 1 bridge kill, \d+ faults injected, "
    rf"\d+ forged webhooks; all {DEALS} deals ended right, {DEALS}/{DEALS} histories replay, none charged twice, "
    r"no forgery funded anything, ledger = sandbox to the cent, reconcile ok, in \d+ s"
)


@pytest.mark.chaos
@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_chaos_run_of_eight_deals_keeps_every_promise(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DEALFLOW_", "STRIPE_"))}
    environment["DEALFLOW_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "dealflow.cli", "chaos", "--deals", str(DEALS), "--seed", str(SEED)],
        check=False,
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"dealflow chaos found problems (exit {done.returncode}):\n{report[-6000:]}"
    assert _SUMMARY.search(" ".join(done.stdout.split())), report[-3000:]
