"""Signing: the statement of work goes out (and the signer's access code on its own, when the
deal asks for one), the client is reminded until they sign, and an unsigned deal expires when
the sign window ends."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.console import milestone_due
    from dealflow.contract import EventKind
    from dealflow.messages import DealStage, EmailKind, Signature, SignSow
    from workflows import rules
    from workflows.deal.access import AccessCode
    from workflows.deal.context import DealContext
    from workflows.deal.timers import Timer


class Signing:
    def __init__(self, ctx: DealContext) -> None:
        self.ctx = ctx
        self.access = AccessCode(ctx)
        self.signature: Signature | None = None
        self._deadline: datetime | None = None
        self._next_reminder_at: datetime | None = None
        self._reminders = 0

    def send_sow(self) -> None:
        ctx = self.ctx
        now = workflow.now()
        self._deadline = now + ctx.policy.sign_window
        self._next_reminder_at = now + ctx.policy.reminder_interval
        ctx.record(
            "workflow",
            EventKind.SOW_SENT,
            f"Statement of work sent to {ctx.spec.client.email} for signature "
            f"(SHA-256 {ctx.sow_sha256[:12]}…)",
        )
        ctx.notify(
            EmailKind.SOW_SENT,
            "client",
            "sow_sent",
            sow=ctx.spec.sow,
            sow_sha256=ctx.sow_sha256,
            milestones=[
                {
                    "title": m.title,
                    "amount_display": ctx.money(m.spec.amount),
                    "due": milestone_due(m.spec),
                }
                for m in ctx.milestones.values()
            ],
            total_display=ctx.money(ctx.spec.total_amount),
        )
        if self.access.required:
            self.access.send()

    async def await_signature(self) -> None:
        await self.ctx.timers.run(lambda: self.ctx.stage is DealStage.SOW_SENT, self._timers)

    def _timers(self) -> list[Timer]:
        assert self._deadline and self._next_reminder_at
        return [
            Timer(self._deadline, "expire the deal: the SOW is still unsigned", self._lapsed),
            Timer(self._next_reminder_at, "remind the client to sign", self._reminder),
        ]

    async def _reminder(self) -> None:
        self._reminders += 1
        self._next_reminder_at = workflow.now() + self.ctx.policy.reminder_interval
        self.ctx.record(
            "timer", EventKind.SIGN_REMINDER, f"Signature reminder {self._reminders} sent"
        )
        self.ctx.notify(EmailKind.SIGN_REMINDER, "client", f"sign_reminder:{self._reminders}")

    async def _lapsed(self) -> None:
        self.ctx.request_stop(
            DealStage.EXPIRED,
            f"the statement of work was not signed within {rules.span(self.ctx.policy.sign_window)}",
            "timer",
        )

    # ------------------------------------------------------------------ the client's action
    # (checked first by `rules.sign_refusal`)

    def sign(self, sign: SignSow) -> str:
        ctx = self.ctx
        now = workflow.now()
        self.signature = Signature(
            signer_name=sign.signer_name,
            signed_at=now,
            sow_sha256=ctx.sow_sha256,
            ip=sign.ip,
            user_agent=sign.user_agent,
            access_code_checked=self.access.required,
        )
        for m in ctx.milestones.values():
            m.set_due(now.date())
        ctx.stage = DealStage.SIGNED
        ctx.record(
            "client",
            EventKind.SIGNED,
            f"Statement of work signed by {sign.signer_name} (consent given; "
            f"{'access code entered; ' if self.access.required else ''}IP {sign.ip or 'unknown'})",
        )
        return "Signed: thank you. The first payment link is on its way."
