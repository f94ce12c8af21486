"""Deals as the CLI prints them: a spec as `dealflow spec check` reads it, and a deal's status
as `dealflow status` shows it (stage and money, the milestones, who signed which version of the
SOW, the access code, what comes next and the latest timeline)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from dealflow.messages import DealStatus
from dealflow.models import DealSpec
from dealflow.money import format_money
from dealflow.terms import describe_late_fee
from dealflow.versions import due_text


def print_spec(console: Console, deal: DealSpec) -> None:
    """Each milestone as the deal will run it, and the total."""
    table = Table("key", "title", "amount", "due", "late fee", title=f"{deal.deal_id}: {deal.title}")
    for m in deal.milestones:
        fee = deal.late_fee_of(m)
        late = describe_late_fee(fee, m.amount, deal.currency) if fee else "-"
        table.add_row(m.key, m.title, format_money(m.amount, deal.currency), due_text(m), late)
    console.print(table)
    console.print(f"total {format_money(deal.total_amount, deal.currency)}: the spec is valid")


def print_deal(console: Console, result: DealStatus) -> None:
    money = result.money
    console.print(f"[bold]{result.title}[/bold] ({result.deal_id})  stage: [cyan]{result.stage}[/cyan]")
    console.print(
        f"contract {format_money(money.contract, result.currency)} · funded {format_money(money.funded, result.currency)}"
        f" · released {format_money(money.released, result.currency)} · refunded {format_money(money.refunded, result.currency)}"
        + (f" · late fees {format_money(money.late_fees, result.currency)}" if money.late_fees else "")
    )
    table = Table("milestone", "state", "amount", "funded", "released", "refunded")
    for m in result.milestones:
        table.add_row(
            m.title, m.state, *(format_money(v, result.currency) for v in (m.amount, m.funded, m.released, m.refunded))
        )
    console.print(table)
    for signed in result.signatures:
        console.print(
            f"signed by {signed.signer_name} for the {signed.party} at {signed.signed_at:%Y-%m-%d %H:%M:%S} UTC"
            f" (SOW version {signed.sow_version}, IP {signed.ip or 'unknown'})"
        )
    for version in result.sow_versions[1:]:
        console.print(
            f"SOW version {version.number}: {version.state}"
            + (f" (superseded by {version.superseded_by})" if version.superseded_by else "")
            + f", proposed by the {version.proposed_by}: {version.reason}"
        )
    if result.awaiting_signature:
        console.print(f"awaiting the {result.awaiting_signature}'s signature")
    if result.certificate_sha256:
        console.print(f"signing certificate SHA-256 {result.certificate_sha256} (dealflow certificate {result.deal_id} -o FILE)")
    if code := result.access_code:
        console.print(
            f"access code: {code.codes_sent} sent, {code.wrong_attempts} wrong, "
            f"{code.attempts_left} tries left{' - signing LOCKED' if code.locked else ''}"
        )
    if result.next_deadline:
        console.print(f"next: {result.next_deadline.action} at {result.next_deadline.at:%Y-%m-%d %H:%M:%S} UTC")
    for anomaly in result.anomalies:
        console.print(f"[yellow]anomaly:[/yellow] {anomaly}")
    for entry in result.timeline[-10:]:
        who = f"{entry.source} {entry.operator}" if entry.operator else entry.source
        console.print(f"  {entry.at:%Y-%m-%d %H:%M:%S} [{who}] {entry.message}", markup=False)

