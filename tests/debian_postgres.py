"""A real PostgreSQL server from Debian's package (`postgresql`, installed by `.ci/run`), not the
embedded one: initdb and pg_ctl from /usr/lib/postgresql/<version>/bin into a temporary
directory, on a free port, with a password (SCRAM) as production has one. initdb refuses to run
as root, so as root the server runs as Debian's `postgres` user, in a directory of /tmp that
user owns (pytest's own temporary directories are the test user's alone).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dealflow.serve import free_port

HOST = "127.0.0.1"
USER = "dealflow"


def debian_postgres_bin() -> Path | None:
    """The newest installed server's bin directory, or None without the package."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def debian_postgres() -> Iterator[str]:
    """Start a server in a new temporary directory; yield its URL; stop it (fast) and remove the
    directory when the block exits."""
    bin_dir = debian_postgres_bin()
    if bin_dir is None:
        raise RuntimeError("Debian's PostgreSQL is not installed (apt-get install postgresql)")
    directory = Path(tempfile.mkdtemp(prefix="dealflow-postgres-"))
    password = secrets.token_urlsafe(24)
    password_file, data, sockets = directory / "password", directory / "data", directory / "sockets"
    password_file.write_text(password)
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        for path in (directory, password_file, sockets):
            shutil.chown(path, "postgres", "postgres")
    port = free_port(HOST)

    def run(program: str, *arguments: str) -> None:
        done = subprocess.run(
            _as_server_user([str(bin_dir / program), *arguments]), check=False, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed (exit {done.returncode}): {done.stdout}{done.stderr}")

    run("initdb", "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={password_file}")
    options = f"-p {port} -k {sockets} -c listen_addresses={HOST}"
    run("pg_ctl", "-D", str(data), "-o", options, "-l", str(directory / "server.log"), "-w", "start")
    try:
        yield f"postgresql://{USER}:{password}@{HOST}:{port}/postgres"
    finally:
        try:
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(directory, ignore_errors=True)
