"""Production, started as an operator starts it: `DEALFLOW_ENV=production`, strong secrets, a
live Stripe key, DATABASE_URL to a real PostgreSQL server (Debian's, not the embedded one), the
worker and the bridge as their own processes.

Production refuses the Stripe sandbox (STRIPE_API_BASE must be Stripe's own), and this machine
cannot reach api.stripe.com, so the smoke test checks all that can be checked without Stripe:
the migrations apply to the real server, both processes start and are ready, the admin API
answers with its token (and only with it), and a deal starts, is signed in the portal and waits
for funding while its checkout activity fails, saying it cannot reach Stripe.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from chaos.stack import bridge_process, worker_process
from dealflow.codec import new_payload_key
from dealflow.models import Policy, workflow_id_for
from dealflow.serve import free_port
from dealflow.settings import Settings
from dealflow.temporal import with_data_converter
from demo.actors import DemoClient
from demo.browser import Browser
from demo.mailbox import MailBox
from demo.specs import WEBSITE
from devstack.mailsink import MailSink
from starter import start_deal
from tests.debian_postgres import debian_postgres, debian_postgres_bin

pytestmark = pytest.mark.skipif(
    debian_postgres_bin() is None,
    reason="Debian's PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)",
)

HOST = "127.0.0.1"
STEP_TIMEOUT = 60.0
#: Settings of the test's own environment that must not reach production's processes.
_OWN_PREFIXES = ("DEALFLOW_", "STRIPE_", "TEMPORAL_", "DATABASE_URL", "SMTP_URL", "OTEL_")


@pytest.fixture
def real_postgres() -> Iterator[str]:
    with debian_postgres() as url:
        yield url


@pytest.fixture
async def mail_sink(tmp_path: Path) -> AsyncIterator[MailSink]:
    sink = MailSink(tmp_path / "mail", host=HOST)
    await sink.start()
    yield sink
    await sink.stop()


def _production_environment(
    database_url: str, temporal_address: str, smtp_url: str, public_url: str, home: Path
) -> dict[str, str]:
    """What an operator sets for production, and nothing from this test's own environment."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_PREFIXES)}
    return environment | {
        "DEALFLOW_ENV": "production",
        "DEALFLOW_HOME": str(home),
        "DEALFLOW_TASK_QUEUE": f"deals-{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_NAMESPACE": "default",
        "STRIPE_API_KEY": "sk_live_" + secrets.token_urlsafe(32),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
        "SMTP_URL": smtp_url,
        "DEALFLOW_PUBLIC_URL": public_url,
        "DEALFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "DEALFLOW_ADMIN_TOKEN": "adm_" + secrets.token_urlsafe(32),
        "DEALFLOW_DELIVERY_SECRET": "dlv_" + secrets.token_urlsafe(32),
        "DEALFLOW_CLIENT_SEARCH_SECRET": "dcs_" + secrets.token_urlsafe(32),
        "DEALFLOW_PAYLOAD_KEYS": new_payload_key(),
    }


async def _pending_activity_failure(client: Client, deal_id: str) -> tuple[str, str]:
    """The deal's pending activity and its last failure (decoded, as an operator's CLI reads
    it), once it failed at least once."""
    handle = client.get_workflow_handle(workflow_id_for(deal_id))
    async with asyncio.timeout(STEP_TIMEOUT):
        while True:
            for pending in (await handle.describe()).raw_description.pending_activities:
                if pending.last_failure.message:
                    failure = await client.data_converter.decode_failure(pending.last_failure)
                    return pending.activity_type.name, str(failure)
            await asyncio.sleep(0.5)


async def test_production_settings_run_on_a_real_postgres_server(
    dev_server_env: WorkflowEnvironment, real_postgres: str, mail_sink: MailSink, tmp_path: Path
) -> None:
    bridge_port = free_port(HOST)
    bridge_url = f"http://{HOST}:{bridge_port}"
    temporal_address = dev_server_env.client.service_client.config.target_host
    environment = _production_environment(
        real_postgres, temporal_address, mail_sink.url, bridge_url, tmp_path / "home"
    )
    (tmp_path / "home").mkdir()
    worker = worker_process(environment, tmp_path / "worker.log")
    bridge = bridge_process(environment, bridge_port, tmp_path / "bridge.log")
    try:
        await worker.start()
        await bridge.start()

        # The migrations applied to the real server.
        connection = await asyncpg.connect(real_postgres)
        try:
            tables = {row["tablename"] for row in await connection.fetch("SELECT tablename FROM pg_tables")}
            server = await connection.fetchval("SHOW server_version")
        finally:
            await connection.close()
        assert {"stripe_events", "payments"} <= tables, sorted(tables)
        assert not server.startswith("18"), "the embedded server is 18; this is Debian's"

        async with httpx.AsyncClient(base_url=bridge_url, timeout=30) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"postgres": True, "temporal": True}
            assert (await http.get("/api/deals")).status_code == 401
            admin = {"Authorization": f"Bearer {environment['DEALFLOW_ADMIN_TOKEN']}"}
            assert (await http.get("/api/deals", headers=admin)).status_code == 200

            deal_id = f"smoke-{uuid.uuid4().hex[:8]}"
            spec = WEBSITE.spec(deal_id, 1, "https://vendor.example.com/work-orders", Policy())
            # The operator's starter, with the production keys: the deal's payloads are encrypted.
            operator = with_data_converter(
                dev_server_env.client, Settings(_env_file=None, **environment)
            )
            await start_deal(operator, spec, environment["DEALFLOW_TASK_QUEUE"])
            async with MailBox(mail_sink.directory).watching() as mailbox:
                await DemoClient(Browser(http), mailbox, deal_id, spec.client.name, timeout=STEP_TIMEOUT).sign()

            activity, failure = await _pending_activity_failure(operator, deal_id)
            deal = (await http.get(f"/api/deals/{deal_id}", headers=admin)).json()
        assert deal["stage"] == "awaiting_funding", deal["stage"]
        assert "checkout" in activity.lower(), activity
        # Stripe out of reach says so, not Temporal's "Failure exceeds size limit." that a chain of
        # stack traces (encrypted, in production) used to become.
        assert "stripe" in failure.lower() and "network" in failure.lower(), failure
    finally:
        await bridge.stop()
        await worker.stop()
