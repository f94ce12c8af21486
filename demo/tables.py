"""What the demo shows: the live table while the deals play, and the summary at the end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import quote

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dealflow.messages import DealSummary, MilestoneState
from dealflow.money import format_money
from demo.cast import DealRun, DemoReport, DemoTarget

#: The money totals the summary adds up per currency, in its columns' order.
_TOTALS = ("contract", "funded", "released", "platform_fees", "refunded")
_STAGE_STYLE = {"completed": "green", "cancelled": "yellow", "expired": "red", "disputed": "magenta"}


def _money(run: DealRun, attribute: str) -> str:
    summary = run.summary
    return format_money(getattr(summary.money, attribute), summary.currency) if summary else ""


def _progress(summary: DealSummary | None) -> str:
    if summary is None:
        return ""
    total = len(summary.milestones)
    released = sum(1 for m in summary.milestones if m.state == MilestoneState.RELEASED)
    active = next(
        (m for m in summary.milestones if m.state not in (MilestoneState.RELEASED, MilestoneState.PENDING)), None
    )
    text = f"{released}/{total} released"
    return f"{text} · {active.key}: {active.state}" if active else text


def live_view(runs: Sequence[DealRun], started: float) -> Table:
    table = Table(
        title=f"dealflow demo · {len(runs)} deals · demo policy (windows in seconds) · sandbox money · "
        f"{time.monotonic() - started:.0f}s",
        title_justify="left",
        expand=True,
    )
    for column in ("deal", "story", "stage", "milestones", "held", "released", "refunded", "latest step"):
        table.add_column(column, no_wrap=column not in ("story", "latest step"))
    for run in runs:
        summary = run.summary
        stage = str(summary.stage) if summary else "starting"
        latest = Text(run.error, style="red") if run.error else Text(run.play.steps[-1] if run.play.steps else "")
        table.add_row(
            run.play.spec.deal_id,
            run.scenario.story,
            Text(stage, style=_STAGE_STYLE.get(stage, "cyan")),
            _progress(summary),
            _money(run, "funded"),
            _money(run, "released"),
            _money(run, "refunded"),
            latest,
        )
    return table


def stories(report: DemoReport) -> Group:
    """Each story once, step by step (its first deal): what the live table showed only in passing."""
    told: set[str] = set()
    lines = [Text("What happened, one deal of each story", style="bold")]
    for run in report.runs:
        if run.scenario.key in told:
            continue
        told.add(run.scenario.key)
        lines.append(Text(f"{run.play.spec.deal_id} · {run.scenario.story}", style="cyan"))
        lines.extend(Text(f"  {number}. {step}") for number, step in enumerate(run.play.steps, start=1))
    return Group(*lines, Text(""))


def summary(report: DemoReport, target: DemoTarget) -> Group:
    """Every deal's end and money, the money by state per currency, and where to look."""
    deals = Table(title=f"{len(report.runs)} demo deals in {report.seconds:.0f}s", title_justify="left")
    for column in ("deal", "story", "end", "contract", "held", "released", "platform fees", "refunded", "client mails"):
        deals.add_column(column, justify="left" if column in ("deal", "story", "end") else "right")
    totals: dict[str, dict[str, int]] = {}
    for run in report.runs:
        summary = run.summary
        expected = str(run.scenario.end)
        if run.ok:
            end = Text(f"✓ {expected}", style="green")
        else:
            end = Text(f"✗ {summary.stage if summary else 'not started'} (expected {expected})", style="red")
        deals.add_row(
            run.play.spec.deal_id,
            run.scenario.story,
            end,
            format_money(summary.money.contract, summary.currency) if summary else "",
            _money(run, "funded"),
            _money(run, "released"),
            _money(run, "platform_fees"),
            _money(run, "refunded"),
            str(report.mails.get(run.play.spec.deal_id, 0)),
        )
        if summary:
            money = totals.setdefault(summary.currency, dict.fromkeys(_TOTALS, 0))
            for key in money:
                money[key] += getattr(summary.money, key)
    by_state = Table(title="Money by state (sandbox money: nothing real moved)", title_justify="left")
    for column in (
        "currency", "contract", "funded (held)", "released", "of it platform fees", "refunded (clients)"
    ):
        by_state.add_column(column, justify="right")
    for currency, money in sorted(totals.items()):
        by_state.add_row(currency.upper(), *(format_money(money[k], currency) for k in _TOTALS))
    ui = target.temporal_ui_url.rstrip("/")
    query = quote("WorkflowType='DealWorkflow'")
    where = [
        "",
        "[bold]Where to look[/bold]",
        f"  Temporal UI   {ui}/namespaces/{target.temporal.namespace}/workflows?query={query}  (with DealStage)",
        f"  Mailbox       {target.public_url.rstrip('/')}/dev/mail  (every mail; files in {target.mail_dir})",
    ]
    if report.portal_link:
        where.append(f"  A portal      {report.portal_link}")
    where.append("  Reports       dealflow report   ·   dealflow list --stage completed")
    problems = [Text(f"{run.play.spec.deal_id}: {run.error}", style="red") for run in report.runs if run.error]
    return Group(deals, *problems, Text(""), by_state, Text.from_markup("\n".join(where)))
