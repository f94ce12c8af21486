"""Files only their owner may read: a dev home holds secrets, portal links in mails, and state.

Everything under `DEALFLOW_HOME` is 0600 (directories 0700): written so from the start where
dealflow writes it, and tightened at each `dealflow dev` start for what other programs (the
Temporal dev server, Postgres) or an older version wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
#: The umask that gives every file a process creates FILE_MODE at most.
UMASK = 0o077


#: Others may pass through a directory with these bits, never list or change it.
TRAVERSE_ONLY = 0o011


def private_directory(path: Path) -> Path:
    """`path`, created if missing, readable by its owner only.

    A grant to pass through that is already there is kept: run as root, the embedded Postgres
    runs as a user of its own and reaches its data directory under the home through it (taken
    away while the server runs, Postgres stops at its next checkpoint, five minutes on)."""
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    path.chmod(DIRECTORY_MODE | (path.stat().st_mode & TRAVERSE_ONLY))
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` (replacing what it held), readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)


def make_private(root: Path) -> None:
    """Take group and other access away from `root` and everything under it (links untouched)."""
    if not root.is_dir() or root.is_symlink():
        return
    private_directory(root)
    for directory, directories, files in os.walk(root):
        for name in directories:
            _tighten(Path(directory, name), DIRECTORY_MODE)
        for name in files:
            _tighten(Path(directory, name), FILE_MODE)


def _tighten(path: Path, most: int) -> None:
    mode = path.lstat().st_mode
    if not path.is_symlink() and mode & 0o077:
        path.chmod(mode & most)
