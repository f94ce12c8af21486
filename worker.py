"""The dealflow worker: runs DealWorkflow and every activity on the `DEALFLOW_TASK_QUEUE` queue.

    python worker.py        (or: dealflow worker)

Connects to Temporal through `temporalio.envconfig` and to Postgres through DATABASE_URL (the
embedded server under .dealflow/ in dev). Serves Temporal's metrics on
DEALFLOW_WORKER_METRICS_ADDRESS and traces to OTEL_EXPORTER_OTLP_ENDPOINT when they are set, and
is one build of a worker deployment when DEALFLOW_WORKER_DEPLOYMENT_NAME and _BUILD_ID are. Stops
cleanly on SIGINT/SIGTERM: no new tasks are taken, running activities get a grace period, then the
process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxRestrictions

from activities.certificates import CertificateActivities
from activities.delivery import DeliveryActivities
from activities.email import EmailActivities
from activities.ledger import LedgerActivities
from activities.payments import PaymentActivities
from activities.receipts import ReceiptActivities
from dealflow.db import create_pool, database_url
from dealflow.egress import artifact_client
from dealflow.logs import TEXT_FORMAT, setup_process_logging
from dealflow.process import run_and_exit
from dealflow.settings import ConfigError, Settings, load_settings
from dealflow.telemetry import start_tracing, worker_runtime
from dealflow.temporal import apply_activation_jobs_as_one_batch, connect
from dealflow.workflow_runner import SHARED_IMPORTS, sandboxed_runner
from workflows.deal import DealWorkflow

log = logging.getLogger("dealflow.worker")

#: The default of DEALFLOW_WORKER_WORKFLOW_POLLERS, for the tests' and benchmarks' own workers.
POLLERS: int = Settings.model_fields["worker_workflow_pollers"].default
GRACEFUL_SHUTDOWN = timedelta(seconds=20)


def activity_methods(*instances: object) -> list[Callable[..., Any]]:
    """Every `@activity.defn` method of the given activity class instances."""
    return [
        getattr(instance, name)
        for instance in instances
        for name in dir(type(instance))
        if hasattr(getattr(type(instance), name), "__temporal_activity_definition")
    ]


def build_activities(
    settings: Settings,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    artifact_http: httpx.AsyncClient,
    resources: AsyncExitStack,
) -> list[Callable[..., Any]]:
    """The real activities, wired to the configured Stripe, SMTP, vendors and Postgres.

    `http` reaches vendors' fulfilment URLs, `artifact_http` (`artifact_client(settings)`) the
    artifacts they submit; the connections the activities open themselves (SMTP) close with
    `resources`, after the worker has stopped."""
    links = settings.portal_links()
    email = EmailActivities(
        smtp_url=settings.smtp_url,
        mail_from=settings.mail_from,
        links=links,
        operator_email=settings.operator_email,
    )
    resources.push_async_callback(email.close)
    return activity_methods(
        PaymentActivities(
            api_key=settings.stripe_api_key, api_base=settings.stripe_api_base, links=links
        ),
        email,
        DeliveryActivities.from_settings(
            settings, http=http, artifact_http=artifact_http, mailer=email
        ),
        LedgerActivities(pool),
        ReceiptActivities(pool),
        CertificateActivities(pool),
    )


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker Versioning, when DEALFLOW_WORKER_DEPLOYMENT_NAME and _BUILD_ID are set: this worker
    is one build of the deployment, and deals follow the deployment's current build on their
    next task (auto-upgrade), so every change of workflow code is behind `workflow.patched`."""
    if settings.worker_deployment_name is None or settings.worker_build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.worker_deployment_name, settings.worker_build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
    )


def build_worker(
    client: Client, settings: Settings, activities: list[Callable[..., Any]]
) -> Worker:
    """The deal worker with the capacity the DEALFLOW_WORKER_* settings give it.

    The sticky timeout is how long a deal's task waits for the worker that has the deal cached
    before any worker takes it: after a crash the deal stalls this long, and the window in which
    a fresh worker answers a status query by applying new events before the task comes (an
    sdk-core path that can order commands otherwise than a replay, see the README) is as short.
    """
    return apply_activation_jobs_as_one_batch(
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[DealWorkflow],
            activities=activities,
            workflow_runner=sandboxed_runner(
                client.data_converter,
                SHARED_IMPORTS
                if settings.worker_sandbox_imports == "shared"
                else SandboxRestrictions.default,
            ),
            max_cached_workflows=settings.worker_max_cached_workflows,
            max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
            max_concurrent_activities=settings.worker_max_concurrent_activities,
            workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
                maximum=settings.worker_workflow_pollers
            ),
            activity_task_poller_behavior=PollerBehaviorSimpleMaximum(
                maximum=settings.worker_activity_pollers
            ),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            deployment_config=deployment_config(settings),
            sticky_queue_schedule_to_start_timeout=timedelta(
                seconds=settings.worker_sticky_timeout_seconds
            ),
        )
    )


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGINT/SIGTERM when no event is given)."""
    stop = stop or _stop_on_signals()
    async with AsyncExitStack() as resources:
        pool = await create_pool(database_url(settings))
        resources.push_async_callback(pool.close)
        http = await resources.enter_async_context(httpx.AsyncClient())
        artifact_http = await resources.enter_async_context(artifact_client(settings))
        client = await connect(settings, runtime=worker_runtime(settings))
        activities = build_activities(settings, pool, http, artifact_http, resources)
        worker = build_worker(client, settings, activities)
        if settings.stripe_mode == "unconfigured":
            log.warning("STRIPE_API_KEY is not set: payment activities will fail until it is")
        log.info(
            "worker polling task queue %r (Stripe: %s; caching up to %d deals; %s)",
            settings.task_queue,
            settings.stripe_mode,
            settings.worker_max_cached_workflows,
            f"deployment {settings.worker_deployment_name}, build {settings.worker_build_id}"
            if settings.worker_build_id
            else "unversioned",
        )
        if settings.worker_metrics_address:
            log.info("Temporal metrics on http://%s/metrics", settings.worker_metrics_address)
        async with worker:
            await stop.wait()
            log.info("shutting down: finishing running tasks")
    log.info("worker stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    try:
        settings = load_settings(need=("DEALFLOW_SECRET_KEY",))
        setup_process_logging(settings)
        start_tracing(settings, "dealflow-worker")
        asyncio.run(run_worker(settings))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from error


if __name__ == "__main__":
    run_and_exit(main)
