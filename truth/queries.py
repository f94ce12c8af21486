"""The truth report's figures, read from the Postgres ledger in one consistent snapshot.

Sources, all in the Postgres ledger:
- `payments`: only money Stripe (or the sandbox) confirmed; revenue comes from here alone;
- `deal_events`: the workflow's audit trail, for the funnel steps that are not money;
- `deals`: the read model, for the contract value (projected) and terminal stages.

Money is integer minor units, per currency and per mode (live, test, sandbox). Two modes or two
currencies are never added together; the projected pipeline is kept apart and labelled.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time

import asyncpg

from dealflow.modes import MODE_SQL, MoneyMode
from truth.figures import (
    Duration,
    FunnelCount,
    MoneyByState,
    MonthRevenue,
    Pipeline,
    TruthReport,
    duration,
)
from truth.funnel import (
    AUTHORIZATION_VOIDED,
    DEAL_EVENT_STEPS,
    DISPUTE_OPENED,
    DISPUTE_RESOLVED,
    FUNNEL,
    MILESTONE_STEPS,
    SIGN_EVENTS,
    STAGE_STEPS,
)

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
               CASE WHEN fee_currency = currency THEN fee END AS stripe_fee,
               kind = 'authorization' AND EXISTS (
                   SELECT 1 FROM payments c WHERE c.kind = 'charge' AND c.stripe_id = p.stripe_id
               ) AS captured_later,
               EXISTS (
                   SELECT 1 FROM payments c WHERE c.kind = 'charge'
                     AND c.deal_id = p.deal_id AND c.milestone_key = p.milestone_key
               ) AS milestone_captured,
               kind = 'refund' AND EXISTS (
                   SELECT 1 FROM payments w WHERE w.kind = 'dispute_withdrawal' AND w.stripe_id = p.stripe_id
               ) AS settles_withdrawal
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
#: money out to the vendor and back to the client, and Stripe's fees on the captures (those
#: recorded in the charge's own currency). A release counts only after a confirmed capture.
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
               coalesce(sum(amount) FILTER (WHERE kind IN ('transfer', 'release', 'platform_fee')), 0)
                 AS released,
               coalesce(sum(amount) FILTER (WHERE kind = 'platform_fee'), 0) AS platform_fees,
               coalesce(sum(amount) FILTER (WHERE kind = 'transfer_reversal'), 0) AS reversed,
               coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded,
               greatest(coalesce(sum(amount) FILTER (WHERE kind = 'dispute_withdrawal'), 0)
                        - coalesce(sum(amount) FILTER (WHERE kind = 'dispute_reinstatement'
                                                       OR settles_withdrawal), 0), 0) AS withdrawn,
               coalesce(sum(stripe_fee), 0) AS stripe_fees,
               count(*) FILTER (WHERE kind = 'charge' AND stripe_fee IS NULL) AS charges_without_fee
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
                   CASE WHEN captured > 0 THEN platform_fees ELSE 0 END AS fees,
                   CASE WHEN captured > 0 THEN reversed ELSE 0 END AS taken_back,
                   funded - CASE WHEN captured > 0 THEN released ELSE 0 END - refunded AS held
            FROM per_milestone p LEFT JOIN open_disputes o USING (deal_id, milestone_key)
        )
        SELECT mode, currency,
               coalesce(sum(held) FILTER (WHERE in_dispute IS NOT TRUE), 0)::bigint AS held,
               coalesce(sum(held) FILTER (WHERE in_dispute), 0)::bigint AS disputed,
               sum(revenue)::bigint AS released, sum(fees)::bigint AS platform_fees,
               sum(taken_back)::bigint AS reversed,
               sum(refunded)::bigint AS refunded, sum(captured)::bigint AS gross,
               sum(withdrawn)::bigint AS withdrawn,
               sum(stripe_fees)::bigint AS stripe_fees,
               sum(charges_without_fee)::bigint AS charges_without_fee,
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
            gross=r["gross"],
            stripe_fees=r["stripe_fees"],
            net=r["gross"] - r["stripe_fees"],
            funded_held=r["held"],
            disputed=r["disputed"],
            withdrawn=r["withdrawn"],
            released=r["released"],
            platform_fees=r["platform_fees"],
            vendor_payouts=r["released"] - r["platform_fees"] - r["reversed"],
            refunded=r["refunded"],
            kept=r["held"] + r["disputed"] + r["released"],
        )
        anomalies.extend(
            f"{milestone}: {r['mode']} release recorded without a confirmed capture; not counted as revenue"
            for milestone in r["unconfirmed_releases"]
        )
        if r["charges_without_fee"]:
            anomalies.append(
                f"{r['mode']} {r['currency']}: {r['charges_without_fee']} charge(s) without Stripe's "
                "fee in their own currency (recorded before fees were read, or settled in another "
                "currency); stripe_fees leaves them out and net counts them in full"
            )
    return dict(money), anomalies


async def _revenue_by_month(
    conn: asyncpg.Connection, since: datetime | None, mode: MoneyMode | None
) -> dict[MoneyMode, dict[str, list[MonthRevenue]]]:
    rows = await conn.fetch(
        _with(_COHORT, _MONEY_ROWS)
        + """ SELECT mode, currency, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
                     sum(amount)::bigint AS released
              FROM money WHERE kind IN ('transfer', 'release', 'platform_fee') AND milestone_captured
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
