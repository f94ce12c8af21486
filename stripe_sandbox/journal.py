"""The files the sandbox keeps its state in: a snapshot (`sandbox.json`) and, next to it, an
append-only journal (`sandbox.json.journal`) of the commits made since.

Each commit is one JSON line, written with one `write` as it happens, so a crash loses at most
the line being written; a torn last line is dropped on reading. The journal starts with a header
naming the snapshot generation it follows: a compaction writes snapshot n+1 and then a fresh
journal n+1, each by an atomic rename, so a crash between the two leaves a journal of
generation n that the new snapshot already contains, and reading skips it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("stripe_sandbox.journal")


def journal_path(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + ".journal")


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file, flush it to disk and rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def dump_line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def read_commits(path: Path, generation: int) -> list[dict[str, Any]]:
    """The commits a journal holds after snapshot `generation`; none if it follows another one."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    header, *body = lines
    if json.loads(header).get("generation") != generation:
        return []
    commits = []
    for number, line in enumerate(body, start=2):
        if not line:
            continue
        try:
            commits.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):
                log.warning("%s: dropped a torn last line (a crash while writing it)", path)
                break
            raise RuntimeError(
                f"{path} line {number} is not JSON ({error}); move it away"
            ) from error
    return commits


class Journal:
    """The open journal: `append` adds one commit line; `size` says when to compact."""

    def __init__(self, path: Path, generation: int) -> None:
        self.path = path
        self.generation = generation
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.size = os.fstat(self._fd).st_size

    @classmethod
    def start(cls, path: Path, generation: int) -> Journal:
        """A fresh journal after snapshot `generation`, replacing any older one."""
        write_atomically(path, dump_line({"generation": generation}))
        return cls(path, generation)

    def append(self, commit: dict[str, Any]) -> None:
        line = dump_line(commit)
        os.write(self._fd, line)
        self.size += len(line)

    def close(self) -> None:
        os.close(self._fd)
