"""The real Temporal dev server as the tests start it: dealflow's search attributes, a database
file of its own, no UI; `extra_args` for dynamic config a test needs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from dealflow.binaries import temporal_cli
from dealflow.contract import SEARCH_ATTRIBUTES


async def start_dev_server(directory: Path, extra_args: Sequence[str] = ()) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_database_filename=str(directory / "dev.db"),
        dev_server_extra_args=list(extra_args),
        ui=False,
    )
