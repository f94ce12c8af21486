"""`dealflow sandbox`: the offline Stripe served alone, with the key it was given, until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from dealflow.serve import free_port

DEALFLOW = str(Path(sys.executable).parent / "dealflow")
TOKEN = "sandbox-token-for-this-test"


def sandbox_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEALFLOW_")}
    env.update(DEALFLOW_SANDBOX_TOKEN=TOKEN, NO_COLOR="1")
    return env


def test_serves_the_given_key_and_says_how_to_reach_it(tmp_path: Path) -> None:
    port = free_port()
    command = [DEALFLOW, "sandbox", "--port", str(port), "--api-key", "sk_test_given"]
    with subprocess.Popen(
        command, env=sandbox_env(), cwd=tmp_path, stdout=subprocess.PIPE, text=True
    ) as sandbox:
        assert sandbox.stdout is not None
        banner = [sandbox.stdout.readline() for _ in range(6)]
        balance = httpx.get(f"http://127.0.0.1:{port}/v1/balance", auth=("sk_test_given", ""))
        refused = httpx.get(f"http://127.0.0.1:{port}/v1/balance", auth=("sk_test_other", ""))
        sandbox.send_signal(signal.SIGTERM)
        rest, _ = sandbox.communicate(timeout=30)
    assert f"  STRIPE_API_BASE=http://127.0.0.1:{port}\n" in banner
    assert f"Authorization: Bearer {TOKEN}" in banner[5]
    assert balance.status_code == 200 and balance.json()["object"] == "balance"
    assert refused.status_code == 401
    assert sandbox.returncode == 0
    assert rest == "sandbox stopped\n"


def test_a_key_that_is_not_a_test_key_is_refused(tmp_path: Path) -> None:
    command = [DEALFLOW, "sandbox", "--port", str(free_port()), "--api-key", "sk_live_nope"]
    env = sandbox_env()
    run = subprocess.run(command, check=False, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2
    assert "api_key must be a test secret key" in run.stderr
    assert "Traceback" not in run.stderr
