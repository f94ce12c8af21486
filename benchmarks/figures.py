"""How a benchmark reports: a line for people, then one JSON line per figure for comparing runs.

Each JSON line is `{"benchmark", "figure", "value", "unit", "params", "git", "at"}`: `params`
says what was measured (deal counts, settings), `git` which commit (`+dirty` for uncommitted
changes), `at` when (UTC). `--jsonl PATH` appends the same lines to a file.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def git_revision() -> str:
    """The commit measured, marked `+dirty` when the work tree has uncommitted changes."""
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty=+dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return described.stdout.strip() or "unknown"


class Figures:
    """The figures of one benchmark run, printed as they are measured."""

    def __init__(self, benchmark: str, jsonl: Path | None = None) -> None:
        self.benchmark = benchmark
        self.jsonl = jsonl
        self.git = git_revision()
        self.recorded: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        print(text, flush=True)

    def record(self, figure: str, value: float, unit: str, **params: Any) -> None:
        line = {
            "benchmark": self.benchmark,
            "figure": figure,
            "value": value,
            "unit": unit,
            "params": params,
            "git": self.git,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.recorded.append(line)
        text = json.dumps(line)
        print(text, flush=True)
        if self.jsonl is not None:
            with self.jsonl.open("a") as out:
                out.write(text + "\n")
