"""The truth report for people: tables in the terminal, durations and rates in words."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from dealflow.modes import MoneyMode
from dealflow.money import format_money
from truth.figures import PROJECTED_LABEL, TruthReport


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
    ("gross", "Gross collected"),
    ("stripe_fees", "  less Stripe fees"),
    ("net", "Net of Stripe fees"),
    ("funded_held", "Funded & held"),
    ("disputed", "Disputed (held)"),
    ("withdrawn", "  of it withdrawn by chargebacks"),
    ("released", "Released (REVENUE)"),
    ("platform_fees", "  of it platform fees"),
    ("vendor_payouts", "  of it vendor payouts"),
    ("refunded", "Refunded"),
    ("kept", "Kept from clients"),
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
    for anomaly in report.anomalies:
        console.print(f"[red]anomaly:[/red] {anomaly}")
