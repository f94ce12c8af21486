"""CPU seconds of the stack's processes, read from /proc/<pid>/stat before and after a run.

A process counts its own threads; a process tree (Postgres: the postmaster and its backends)
counts the live processes of the tree plus what the reaped ones used (the root's cutime).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from benchmarks.figures import Report

_TICKS = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    """utime + stime of one process (and cutime + cstime: its children that exited and were waited for)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name, in parentheses, may contain spaces: count the fields after it.
        fields = stat.read().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        used += int(fields[13]) + int(fields[14])
    return used / _TICKS


def tree_seconds(pid: int) -> float:
    seconds = process_seconds(pid, with_reaped_children=True)
    for child in psutil.Process(pid).children(recursive=True):
        try:
            seconds += process_seconds(child.pid)
        except FileNotFoundError:  # it exited between the listing and the read
            continue
    return seconds


@dataclass(frozen=True)
class Watched:
    pid: int
    tree: bool = False

    def seconds(self) -> float:
        return tree_seconds(self.pid) if self.tree else process_seconds(self.pid)


class CpuMeter:
    """`start()`, run, `stop()`: the CPU seconds each named process used in between."""

    def __init__(self, processes: Mapping[str, Watched]) -> None:
        self.processes = dict(processes)
        self._before: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {name: watched.seconds() for name, watched in self.processes.items()}

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        return {name: round(after[name] - self._before[name], 3) for name in self.processes}


def report_cpu_per(
    report: Report,
    figure: str,
    used: Mapping[str, float],
    units: int,
    params: dict[str, Any],
    label: str,
) -> None:
    """One figure: the CPU seconds of all processes per unit of work (a deal, a payment), with
    each process's share in `by_process`."""
    per_unit = {name: round(seconds / units, 4) for name, seconds in used.items()}
    line = " / ".join(f"{name} {seconds:.3f}" for name, seconds in per_unit.items())
    report.figure(
        figure,
        round(sum(per_unit.values()), 4),
        "s",
        {**params, "by_process": per_unit},
        human=f"    {label}: {line}",
    )
