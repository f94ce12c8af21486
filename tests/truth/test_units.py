"""The pieces of the report on their own: percentiles, durations, charts, money modes, and the
guard that keeps unconfirmed money out of revenue."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import asyncpg
import pytest
from rich.console import Console

from bridge.charts import Bar, horizontal_bars, vertical_bars
from dealflow.modes import MoneyMode, money_mode
from truth.figures import duration
from truth.queries import build_report
from truth.render import human_duration, render_tables

SVG = "{http://www.w3.org/2000/svg}"


def test_median_and_nearest_rank_p90() -> None:
    assert duration([]).model_dump() == {"count": 0, "median_seconds": None, "p90_seconds": None}
    assert duration([30]).model_dump() == {"count": 1, "median_seconds": 30, "p90_seconds": 30}
    assert duration([40, 10, 30, 20]).model_dump() == {
        "count": 4,
        "median_seconds": 25,
        "p90_seconds": 40,
    }
    ten = duration(list(range(1, 11)))
    assert (ten.median_seconds, ten.p90_seconds) == (5, 9)
    eleven = duration(list(range(1, 12)))
    assert (eleven.median_seconds, eleven.p90_seconds) == (6, 10)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (42, "42s"),
        (125, "2m 5s"),
        (3 * 3600 + 120, "3h 2m"),
        (2 * 86400 + 3600, "2d 1h"),
    ],
)
def test_human_duration(seconds: int | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_money_mode_never_mixes() -> None:
    assert money_mode(livemode=True, sandbox=False) is MoneyMode.LIVE
    assert money_mode(livemode=False, sandbox=True) is MoneyMode.SANDBOX
    assert money_mode(livemode=False, sandbox=False) is MoneyMode.TEST
    with pytest.raises(ValueError, match="^livemode"):
        money_mode(livemode=True, sandbox=True)


def _texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_funnel_chart_is_valid_svg_with_every_figure_and_proportional_bars() -> None:
    svg = horizontal_bars(
        "Funnel <all>",
        [
            Bar("Deals started", 10, "10"),
            Bar("Signed & sent", 5, "5", "(50.0%)"),
            Bar("Expired", 0, "0"),
        ],
    )
    root = ET.fromstring(svg)  # escaping kept it well-formed
    assert root.get("aria-label") == "Funnel <all>"
    assert {"Funnel <all>", "Deals started", "Signed & sent", "10", "5 (50.0%)", "0"} <= set(
        _texts(svg)
    )
    widths = [int(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == 2 * widths[1] and widths[2] == 0


def test_month_chart_labels_each_month_with_its_money() -> None:
    svg = vertical_bars(
        "Revenue", [Bar("2026-01", 150_000, "USD 1,500.00"), Bar("2026-02", 1, "USD 0.01")]
    )
    texts = _texts(svg)
    assert {"2026-01", "USD 1,500.00", "2026-02", "USD 0.01"} <= set(texts)
    heights = [int(r.get("height")) for r in ET.fromstring(svg).iter(f"{SVG}rect")]
    assert heights[0] > heights[1] >= 1  # a cent is still visible
    assert "nothing yet" in _texts(vertical_bars("Revenue", []))


async def test_a_release_without_a_confirmed_capture_is_never_revenue(
    db_pool: asyncpg.Pool,
) -> None:
    """The workflow releases only captured money, so this ledger row is written directly: it
    stands for a bug or a hand edit, which the report must name instead of counting."""
    await db_pool.execute(
        """INSERT INTO payments (stripe_id, kind, deal_id, milestone_key, amount, currency,
                                 livemode, sandbox, status, occurred_at)
           VALUES ('pi_NeverCaptured', 'release', 'odd-deal', 'm1', 5_000, 'usd', false, true,
                   'released', now())"""
    )
    report = await build_report(db_pool)
    sandbox_usd = report.money[MoneyMode.SANDBOX]["usd"]
    assert (sandbox_usd.released, sandbox_usd.funded_held, sandbox_usd.kept) == (0, 0, 0)
    assert report.revenue_by_month == {}
    assert report.anomalies == [
        "odd-deal/m1: sandbox release recorded without a confirmed capture; not counted as revenue"
    ]


async def test_gross_stripe_fees_net_platform_fees_and_payouts_add_up_to_the_cent(
    db_pool: asyncpg.Pool,
) -> None:
    """Ledger rows as the workflow writes them (charges with the fee and net of their balance
    transaction), plus a charge from before fees were read and one settled in another
    currency, which the report names instead of guessing their fees."""
    await db_pool.execute(
        """INSERT INTO payments (stripe_id, kind, deal_id, milestone_key, amount, currency,
                                 livemode, sandbox, status, occurred_at, fee, net, fee_currency)
           VALUES ('pi_A', 'charge', 'a', 'm1', 100_000, 'usd', false, true, 'succeeded', now(), 2_930, 97_070, 'usd'),
                  ('tr_A', 'transfer', 'a', 'm1', 97_500, 'usd', false, true, 'paid', now(), NULL, NULL, NULL),
                  ('pi_A', 'platform_fee', 'a', 'm1', 2_500, 'usd', false, true, 'kept', now(), NULL, NULL, NULL),
                  ('pi_B', 'charge', 'b', 'm1', 10_001, 'usd', false, true, 'succeeded', now(), 320, 9_681, 'usd'),
                  ('re_B', 'refund', 'b', 'm1', 10_001, 'usd', false, true, 'succeeded', now(), NULL, NULL, NULL),
                  ('pi_C', 'charge', 'c', 'm1', 5_000, 'usd', false, true, 'succeeded', now(), NULL, NULL, NULL),
                  ('pi_D', 'charge', 'd', 'm1', 20_000, 'eur', false, true, 'succeeded', now(), 610, 21_190, 'usd'),
                  ('pi_T', 'charge', 't', 'm1', 7_000, 'usd', false, false, 'succeeded', now(), 233, 6_767, 'usd')"""
    )  # fmt: skip
    report = await build_report(db_pool)
    figures = {
        (mode, currency): money.model_dump()
        for mode, by_currency in report.money.items()
        for currency, money in by_currency.items()
    }
    assert figures == {
        (MoneyMode.SANDBOX, "usd"): {
            "gross": 115_001, "stripe_fees": 3_250, "net": 111_751,
            "funded_held": 5_000, "disputed": 0, "withdrawn": 0, "released": 100_000, "platform_fees": 2_500,
            "vendor_payouts": 97_500, "refunded": 10_001, "kept": 105_000,
        },
        (MoneyMode.SANDBOX, "eur"): {
            "gross": 20_000, "stripe_fees": 0, "net": 20_000,
            "funded_held": 20_000, "disputed": 0, "withdrawn": 0, "released": 0, "platform_fees": 0,
            "vendor_payouts": 0, "refunded": 0, "kept": 20_000,
        },
        (MoneyMode.TEST, "usd"): {
            "gross": 7_000, "stripe_fees": 233, "net": 6_767,
            "funded_held": 7_000, "disputed": 0, "withdrawn": 0, "released": 0, "platform_fees": 0,
            "vendor_payouts": 0, "refunded": 0, "kept": 7_000,
        },
    }  # fmt: skip
    assert [anomaly.split(":")[0] for anomaly in report.anomalies] == ["sandbox eur", "sandbox usd"]
    assert "1 charge(s) without Stripe's fee" in report.anomalies[1]

    console = Console(file=io.StringIO(), width=200)
    render_tables(report, console)
    text = console.file.getvalue()
    fees_row = next(line for line in text.splitlines() if "less Stripe fees" in line)
    assert "USD 32.50" in fees_row and "USD 2.33" in fees_row
    assert "anomaly: sandbox usd: 1 charge(s)" in text


async def test_chargeback_money_counts_as_withdrawn_until_the_bank_decides(
    db_pool: asyncpg.Pool,
) -> None:
    """Open (dp_A), won (dp_B) and lost (dp_C, whose refund row carries the dispute's id)."""
    await db_pool.execute(
        """INSERT INTO payments (stripe_id, kind, deal_id, milestone_key, amount, currency,
                                 livemode, sandbox, status, occurred_at)
           VALUES ('pi_A', 'charge', 'a', 'm1', 10_000, 'usd', false, true, 'succeeded', now()),
                  ('dp_A', 'dispute_withdrawal', 'a', 'm1', 10_000, 'usd', false, true, 'withdrawn', now()),
                  ('pi_B', 'charge', 'b', 'm1', 20_000, 'usd', false, true, 'succeeded', now()),
                  ('dp_B', 'dispute_withdrawal', 'b', 'm1', 20_000, 'usd', false, true, 'withdrawn', now()),
                  ('dp_B', 'dispute_reinstatement', 'b', 'm1', 20_000, 'usd', false, true, 'reinstated', now()),
                  ('pi_C', 'charge', 'c', 'm1', 30_000, 'usd', false, true, 'succeeded', now()),
                  ('dp_C', 'dispute_withdrawal', 'c', 'm1', 30_000, 'usd', false, true, 'withdrawn', now()),
                  ('dp_C', 'refund', 'c', 'm1', 30_000, 'usd', false, true, 'lost', now())"""
    )  # fmt: skip
    usd = (await build_report(db_pool)).money[MoneyMode.SANDBOX]["usd"]
    assert (usd.withdrawn, usd.refunded, usd.gross) == (10_000, 30_000, 60_000)
