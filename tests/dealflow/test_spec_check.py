"""`dealflow spec check`: a spec validated without starting it, a schedule shown as the
milestones it compiles into, and a bad one refused with exit code 2 and every field named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.paths import EXAMPLES


def spec_check(spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dealflow.cli", "spec", "check", str(spec)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_a_schedule_is_shown_as_its_milestones() -> None:
    result = spec_check(EXAMPLES / "brand-refresh-schedule.yaml")
    assert result.returncode == 0, result.stderr
    for expected in (
        "USD 3,600.00",
        "at signature (deposit)",
        "USD 8,100.00",
        "USD 6,300.00",
        "1.5 % (USD 121.50) every 30 days from 5 days after the due date, at most USD 500.00",
        "total USD 18,000.00: the spec is valid",
    ):
        assert expected in result.stdout, expected


def test_a_bad_schedule_exits_2_naming_each_entry(tmp_path: Path) -> None:
    text = (EXAMPLES / "brand-refresh-schedule.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("percent: 45", "percent: 44.999").replace("due_in_days: 60", "due_in_days: 20"))
    result = spec_check(bad)
    assert result.returncode == 2
    assert "schedule[1].percent: at most two decimals" in result.stderr
    assert "schedule[2].due_in_days: 20 comes before schedule[1].due_in_days (30)" in result.stderr
