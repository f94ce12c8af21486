"""How the benchmarks report: one JSON line per figure, nearest-rank percentiles, size options."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from benchmarks.figures import Report, count, percentile


def test_each_figure_is_one_json_line_also_appended_to_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "figures.jsonl"
    report = Report("example", jsonl)
    report.figure(
        "deals_per_second", 3.4, "deals/s", {"deals": 100}, human="100 deals: 3.4 deals/s"
    )
    report.percentiles(
        "answer",
        [0.010, 0.020, 0.030, 0.040],
        "ms",
        {"rate": 50},
        label="answer",
        scale=1000,
        goal=50,
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "100 deals: 3.4 deals/s"
    assert printed[2] == "answer: p50 20.0 ms, p99 40.0 ms (goal: p99 <= 50 ms)"
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["figure"] for line in lines] == ["deals_per_second", "answer_p50", "answer_p99"]
    assert (
        lines[0]["benchmark"] == "example"
        and lines[0]["value"] == 3.4
        and lines[0]["unit"] == "deals/s"
    )
    assert lines[0]["params"] == {"deals": 100}
    assert lines[2]["params"] == {"rate": 50, "goal": 50}
    assert all(line["git"] and line["at"] for line in lines)


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


@pytest.mark.parametrize("text", ["0", "-3", "ten"])
def test_a_size_must_be_a_whole_number_of_at_least_one(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        count(text)
