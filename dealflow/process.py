"""Leaving a process that used a Temporal client.

The SDK's Rust threads can abort CPython's finalization ("PyGILState_Release: thread state must
be current", temporalio/sdk-python#300), turning a clean exit into SIGABRT. Entry points leave
through `exit_process`, which runs the atexit handlers (embedded Postgres stops there), flushes
the output and skips the finalization that crashes.
"""

from __future__ import annotations

import atexit
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn


def exit_code(exit: SystemExit) -> int:
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    print(exit.code, file=sys.stderr)
    return 1


def exit_process(code: int) -> NoReturn:
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_and_exit(entry_point: Callable[[], object]) -> NoReturn:
    """Run a command's entry point, then leave with its exit code (see module docstring)."""
    try:
        entry_point()
        code = 0
    except SystemExit as exit:
        code = exit_code(exit)
    except KeyboardInterrupt:
        code = 130
    except Exception:  # noqa: BLE001 - reported, then the same exit path
        traceback.print_exc()
        code = 1
    exit_process(code)
