"""The starter: invalid specs exit 2 naming each field; a deal id is started once, ever."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import starter
from dealflow.models import DealSpec
from dealflow.specs import load_spec
from tests.paths import ROOT


def run_starter(spec: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "starter.py"), str(spec)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        cwd=spec.parent,
    )


def test_negative_amount_exits_2_naming_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    text = (ROOT / "examples" / "website-redesign.yaml").read_text()
    spec.write_text(text.replace("amount: 450000", "amount: -450000").replace("currency: usd", "currency: usdx"))
    result = run_starter(spec)
    assert result.returncode == 2
    assert "milestones[0].amount: Input should be greater than 0" in result.stderr
    assert "currency: Input should be" in result.stderr


def test_a_window_past_ten_years_exits_2_before_any_deal_starts(tmp_path: Path) -> None:
    """A typo of a window (a million weeks) would fail the deal's first clock for good."""
    spec = tmp_path / "long.yaml"
    text = (ROOT / "examples" / "website-redesign.yaml").read_text()
    spec.write_text(text.replace("sign_window: 14d", "sign_window: 999999999999w"))
    result = run_starter(spec)
    assert result.returncode == 2
    assert "policy.sign_window: Value error, must be at most 3650 days (10 years) long" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_spec_exits_2(tmp_path: Path) -> None:
    result = run_starter(tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert "cannot read the file" in result.stderr


async def test_same_deal_twice_is_refused(dev_server_env: WorkflowEnvironment) -> None:
    spec = load_spec(ROOT / "examples" / "website-redesign.yaml").model_copy(
        update={"deal_id": f"twice-{uuid.uuid4().hex[:8]}"}
    )
    queue = f"no-worker-{uuid.uuid4().hex[:6]}"  # no worker needed to prove the id policy
    handle = await starter.start_deal(dev_server_env.client, spec, queue)
    assert handle.id == f"deal-{spec.deal_id}"
    with pytest.raises(starter.DealExists, match="already exists"):
        await starter.start_deal(dev_server_env.client, spec, queue)
    await handle.terminate("test over")
    with pytest.raises(starter.DealExists):
        await starter.start_deal(dev_server_env.client, spec, queue)


def test_starter_prints_the_workflow_and_its_ui_link_then_refuses_a_second_start(
    tmp_path: Path, dev_server_env: WorkflowEnvironment
) -> None:
    deal_id = f"cli-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "deal.yaml"
    spec.write_text(
        (ROOT / "examples" / "website-redesign.yaml").read_text().replace("acme-website-2026", deal_id)
    )
    env = {
        "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "DEALFLOW_TASK_QUEUE": f"no-worker-{deal_id}",
        "DEALFLOW_HOME": str(tmp_path / "home"),
        "DEALFLOW_TEMPORAL_UI_URL": "http://ui.example:8233",
    }
    first = run_starter(spec, **env)
    assert first.returncode == 0, first.stderr
    assert f"started deal-{deal_id}" in first.stdout
    assert f"http://ui.example:8233/namespaces/default/workflows/deal-{deal_id}" in first.stdout

    second = run_starter(spec, **env)
    assert second.returncode == 1
    assert f"deal '{deal_id}' already exists" in second.stderr


@pytest.mark.parametrize("command", [["starter.py"], ["-m", "dealflow.cli", "start"]], ids=["starter", "dealflow-start"])
def test_poisoned_text_exits_2_naming_the_field_before_anything_starts(tmp_path: Path, command: list[str]) -> None:
    spec = tmp_path / "poison.yaml"
    text = (ROOT / "examples" / "website-redesign.yaml").read_text()
    spec.write_text(
        text.replace("name: Dana Whitfield", 'name: "Dana\\0Whitfield"')
        .replace("title: Discovery and wireframes", 'title: "Discovery\\r\\nBcc: all"')
    )
    result = subprocess.run(
        [sys.executable, *command, str(spec)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        # Nothing listens there: an exit 2 proves the spec was refused before any connection.
        env={**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:9"},
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "client.name: contains a NUL byte" in result.stderr
    assert "milestones[0].title: contains a line break; it must be a single line" in result.stderr


async def test_a_scheduled_spec_starts_as_its_compiled_milestones(
    tmp_path: Path, dev_server_env: WorkflowEnvironment
) -> None:
    deal_id = f"sched-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "deal.yaml"
    spec.write_text(
        (ROOT / "examples" / "brand-refresh-schedule.yaml").read_text().replace("lumen-brand-2027", deal_id)
    )
    env = {
        "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "DEALFLOW_TASK_QUEUE": f"no-worker-{deal_id}",
        "DEALFLOW_HOME": str(tmp_path / "home"),
    }
    started = await asyncio.to_thread(run_starter, spec, **env)
    assert started.returncode == 0, started.stderr

    handle = dev_server_env.client.get_workflow_handle(f"deal-{deal_id}")
    history = await handle.fetch_history()
    given = history.events[0].workflow_execution_started_event_attributes.input.payloads
    [deal] = await dev_server_env.client.data_converter.decode(given, [DealSpec])
    await handle.terminate("test over")
    assert [(m.key, m.amount, m.deposit) for m in deal.milestones] == [
        ("deposit", 360_000, True),
        ("identity", 810_000, False),
        ("packaging", 630_000, False),
    ]
