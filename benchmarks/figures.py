"""How every benchmark reports: a line for people, and one JSON line per figure for comparing runs.

    {"benchmark": "deal_throughput", "figure": "deals_per_second", "value": 3.4, "unit": "deals/s",
     "params": {"deals": 100, "milestones": 1}, "git": "d188766", "at": "2025-01-01T09:14:02+00:00"}

`--jsonl PATH` appends the same lines to a file, so one run can be set beside the next.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import tempfile
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def git_revision() -> str:
    """The short commit the figures were measured on; `-dirty` when the tree had changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{sha}-dirty" if git("status", "--porcelain", "--untracked-files=no") else sha


class Report:
    """Prints each figure twice: for people, and as one JSON line (also appended to `jsonl`)."""

    def __init__(self, benchmark: str, jsonl: Path | None = None) -> None:
        self.benchmark = benchmark
        self.jsonl = jsonl
        self.git = git_revision()
        #: What went wrong while measuring; the figures stand, and the script exits 1.
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)
        print(f"PROBLEM: {text}", flush=True)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def say(self, text: str) -> None:
        """A line for people only."""
        print(text, flush=True)

    def record(self, figure: str, value: float, unit: str, **params: Any) -> None:
        """A figure whose human line was said already (or needs none)."""
        self.figure(figure, value, unit, params, human=None)

    def figure(
        self, figure: str, value: float, unit: str, params: dict[str, Any], *, human: str | None
    ) -> None:
        line = {
            "benchmark": self.benchmark,
            "figure": figure,
            "value": value,
            "unit": unit,
            "params": params,
            "git": self.git,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        text = json.dumps(line)
        if human is not None:
            print(human, flush=True)
        print(text, flush=True)
        if self.jsonl is not None:
            with self.jsonl.open("a") as out:
                out.write(text + "\n")

    def percentiles(
        self,
        figure: str,
        values: list[float],
        unit: str,
        params: dict[str, Any],
        *,
        label: str,
        goal: float | None = None,
        scale: float = 1.0,
    ) -> None:
        """`<figure>_p50` and `<figure>_p99` of the values (times `scale`), on one human line."""
        p50, p99 = (round(percentile(values, fraction) * scale, 3) for fraction in (0.5, 0.99))
        against = f" (goal: p99 <= {goal} {unit})" if goal is not None else ""
        human = f"{label}: p50 {p50} {unit}, p99 {p99} {unit}{against}"
        self.figure(f"{figure}_p50", p50, unit, params, human=human)
        self.figure(f"{figure}_p99", p99, unit, {**params, "goal": goal}, human=None)


def benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark has: `--quick`, `--jsonl`, `--home`."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes: proves the benchmark runs, measures little",
    )
    parser.add_argument(
        "--jsonl", type=Path, help="also append every figure's JSON line to this file"
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="keep the stack's state and logs here (default: a temporary directory, removed)",
    )
    return parser


def add_milestones_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--milestones",
        type=int,
        nargs="+",
        choices=range(1, 21),
        metavar="M",
        help="deal sizes, in milestones (default: 1 3; --quick 1)",
    )


def milestone_counts(args: argparse.Namespace) -> list[int]:
    return args.milestones or ([1] if args.quick else [1, 3])


def run_in_home(
    home: Path | None, prefix: str, benchmark: Callable[[Path], Coroutine[Any, Any, None]]
) -> None:
    """Run the benchmark with its stack under `home` (kept), or in a temporary directory (removed)."""
    if home is not None:
        asyncio.run(benchmark(home))
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as temporary:
        asyncio.run(benchmark(Path(temporary)))


def count(text: str) -> int:
    """An argparse type: a whole number of at least 1 (anything else exits 2, naming the option)."""
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from error
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def size(given: int | None, *, full: int, quick: int, is_quick: bool) -> int:
    """A size option: as given, else the issue's size, or the small one with --quick."""
    if given is not None:
        return given
    return quick if is_quick else full


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p50: fraction 0.5) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]
