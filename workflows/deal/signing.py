"""Signing: the statement of work goes out, each signer is reminded until they sign, and an
unsigned deal expires when the sign window ends.

Deals signed by the client alone sign as they always did. A countersigned deal (DEAL_TERMS,
the spec's `signing_order` lists the vendor too) asks its signers one after the other, in that
order, each through their own portal link; work starts once every party has signed, and a
signing certificate (a PDF made by an activity from the signatures recorded here) goes to both
parties and into the ledger. When the deal asks for one, the client's access code goes out on
its own as the client is asked to sign (`access.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import EventKind
    from dealflow.messages import (
        CertificateInput,
        CertificateResult,
        DealStage,
        EmailAttachment,
        EmailKind,
        Signature,
        SignerParty,
        SignSow,
    )
    from dealflow.signers import Signer, countersigned
    from dealflow.versions import due_text
    from workflows import calls, rules
    from workflows.deal.access import AccessCode
    from workflows.deal.context import DealContext
    from workflows.deal.timers import Timer


class Signing:
    def __init__(self, ctx: DealContext) -> None:
        self.ctx = ctx
        self.access = AccessCode(ctx)
        #: The client's signature (the evidence a chargeback is answered with).
        self.signature: Signature | None = None
        #: Every party's signature of a countersigned deal, in the order given.
        self.signatures: list[Signature] = []
        self.certificate_sha256: str | None = None
        #: Who signs, first signer first; the client alone for deals before DEAL_TERMS.
        self.order: tuple[Signer, ...] = (
            tuple(ctx.spec.signing_order) if ctx.deal_terms else ("client",)
        )
        self.sow_version = 1
        self._deadline: datetime | None = None
        self._next_reminder_at: datetime | None = None
        self._reminders = 0

    @property
    def countersigned(self) -> bool:
        return countersigned(list(self.order))

    @property
    def signed(self) -> list[Signer]:
        """The parties who signed so far."""
        if self.countersigned:
            return [s.party for s in self.signatures]
        return ["client"] if self.signature else []

    def all_signatures(self) -> list[Signature]:
        return self.signatures if self.countersigned else [s for s in (self.signature,) if s]

    def awaiting(self) -> Signer | None:
        """Whose signature the deal waits for, or None once it is signed (or over)."""
        if self.ctx.stage is not DealStage.SOW_SENT:
            return None
        return rules.next_signer(self.order, self.signed)

    def refusal(self, sign: SignSow) -> str | None:
        """What the validator may say; the client's access code is compared in `admit`."""
        return rules.sign_refusal(
            self.ctx.stage, self.ctx.sow_sha256, sign, self.order, self.signed
        ) or (self.access.refusal(sign) if sign.party == "client" else None)

    def admit(self, sign: SignSow) -> str | None:
        return self.access.admit(sign) if sign.party == "client" else None

    def send_sow(self) -> None:
        ctx = self.ctx
        now = workflow.now()
        self._deadline = now + ctx.policy.sign_window
        self._next_reminder_at = now + ctx.policy.reminder_interval
        # The ledger keeps version 1 in full, as it keeps each later version (`Amendments`).
        version = (
            {
                "sow_version": 1,
                "sow": ctx.spec.sow,
                "milestones": [m.model_dump(mode="json") for m in ctx.spec.milestones],
            }
            if ctx.deal_terms
            else None
        )
        if self.order[0] == "vendor":
            ctx.record(
                "workflow",
                EventKind.SOW_SENT,
                f"Statement of work sent to {ctx.spec.vendor.email} to sign first, then to "
                f"{ctx.spec.client.email} (SHA-256 {ctx.sow_sha256[:12]}…)",
                detail=version,
            )
            self._ask_vendor(0)
            return
        ctx.record(
            "workflow",
            EventKind.SOW_SENT,
            f"Statement of work sent to {ctx.spec.client.email} for signature "
            f"(SHA-256 {ctx.sow_sha256[:12]}…)",
            detail=version,
        )
        self._ask_client()

    def _ask_client(self) -> None:
        """The SOW to the client, and their access code in a mail of its own if the deal asks."""
        self.ctx.awaited_signer = "client"
        self.ctx.notify(EmailKind.SOW_SENT, "client", "sow_sent", **self._sow_context())
        if self.access.required:
            self.access.send()

    def _sow_context(self) -> dict[str, Any]:
        """What a mail asking for a signature shows: the SOW, its hash, milestones and total."""
        ctx = self.ctx
        return {
            "sow": ctx.spec.sow,
            "sow_sha256": ctx.sow_sha256,
            "milestones": [
                {
                    "title": m.title,
                    "amount_display": ctx.money(m.spec.amount),
                    "due": due_text(m.spec),
                }
                for m in ctx.milestones.values()
            ],
            "total_display": ctx.money(ctx.spec.total_amount),
        }

    def _ask_vendor(self, reminder: int) -> None:
        """The SOW to the vendor with their own portal link (or, `reminder` > 0, a reminder)."""
        self.ctx.awaited_signer = "vendor"
        self.ctx.notify(
            EmailKind.VENDOR_SIGN_REQUEST,
            "vendor",
            f"vendor_sign_request:{reminder}",
            reminder=reminder,
            **self._sow_context(),
        )

    async def await_signature(self) -> None:
        await self.ctx.timers.run(lambda: self.ctx.stage is DealStage.SOW_SENT, self._timers)

    def _timers(self) -> list[Timer]:
        assert self._deadline and self._next_reminder_at
        return [
            Timer(self._deadline, "expire the deal: the SOW is still unsigned", self._lapsed),
            Timer(self._next_reminder_at, f"remind the {self.awaiting()} to sign", self._reminder),
        ]

    async def _reminder(self) -> None:
        self._reminders += 1
        self._next_reminder_at = workflow.now() + self.ctx.policy.reminder_interval
        if self.awaiting() == "vendor":
            self.ctx.record(
                "timer",
                EventKind.SIGN_REMINDER,
                f"Signature reminder {self._reminders} sent to the vendor",
            )
            self._ask_vendor(self._reminders)
            return
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

    # ------------------------------------------------------------------ a signer's action
    # (checked first by `refusal`)

    def sign(self, sign: SignSow) -> str:
        ctx = self.ctx
        now = workflow.now()
        signature = Signature(
            signer_name=sign.signer_name,
            signed_at=now,
            sow_sha256=ctx.sow_sha256,
            ip=sign.ip,
            user_agent=sign.user_agent,
            party=sign.party,
            sow_version=self.sow_version,
            consent=sign.consent,
            access_code_checked=sign.party == "client" and self.access.required,
        )
        if sign.party == "client":
            self.signature = signature
        if self.countersigned:
            return self._countersign(signature)
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

    def _countersign(self, signature: Signature) -> str:
        """One party's signature of a countersigned SOW: the next signer is asked, or, the last
        one in, the deal is signed and its certificate issued."""
        ctx = self.ctx
        self.signatures.append(signature)
        ctx.record(
            signature.party,
            EventKind.SIGNATURE,
            f"Statement of work version {signature.sow_version} signed by "
            f"{signature.signer_name} for the {signature.party} "
            f"(consent given; IP {signature.ip or 'unknown'})",
            detail={"signature": signature.model_dump(mode="json")},
        )
        awaited = self.awaiting()
        if awaited == "vendor":
            self._ask_vendor(0)
        elif awaited == "client":
            self._ask_client()
        if awaited is not None:
            return f"Signed: thank you. The {awaited} signs next; work starts once they have."
        for m in ctx.milestones.values():
            m.set_due(signature.signed_at.date())
        ctx.stage = DealStage.SIGNED
        ctx.record(
            "workflow",
            EventKind.SIGNED,
            f"Statement of work signed by every party ({', '.join(self.order)}): work can start",
        )
        self.issue_certificate(
            self.sow_version, self.ctx.sow_sha256, list(self.signatures), self._mail_certificate
        )
        return "Signed by every party: thank you. The signing certificate is on its way by mail."

    def issue_certificate(
        self,
        version: int,
        sow_sha256: str,
        signatures: list[Signature],
        mail: Callable[[int, str, EmailAttachment, str], None],
    ) -> None:
        """The signing certificate of `version` (its `signatures`, the last one's time its date)
        made and kept beside the deal; once it is, it goes into the timeline and to `mail`
        (version, the version's SHA-256, the PDF, the PDF's SHA-256)."""
        spec = self.ctx.spec
        certificate = CertificateInput(
            deal_id=spec.deal_id,
            deal_title=spec.title,
            sow_sha256=sow_sha256,
            sow_version=version,
            parties=[
                SignerParty(party="client", name=spec.client.name, email=str(spec.client.email)),
                SignerParty(party="vendor", name=spec.vendor.name, email=str(spec.vendor.email)),
            ],
            signatures=signatures,
            completed_at=signatures[-1].signed_at,
        )
        self.ctx.beside(
            "issuing the signing certificate",
            calls.ISSUE_CERTIFICATE,
            certificate,
            None,
            then=lambda result: self._certified(certificate, result, mail),
        )

    async def _certified(
        self,
        certificate: CertificateInput,
        result: CertificateResult,
        mail: Callable[[int, str, EmailAttachment, str], None],
    ) -> None:
        """The certificate's SHA-256 into the timeline and the ledger, the PDF to `mail`."""
        version = certificate.sow_version
        self.certificate_sha256 = result.sha256
        self.ctx.record(
            "workflow",
            EventKind.SIGNING_CERTIFICATE,
            f"Signing certificate of statement of work version {version} issued "
            f"(SHA-256 {result.sha256})",
            detail={"sow_version": version, "certificate_sha256": result.sha256},
        )
        attachment = EmailAttachment(
            filename=f"signing-certificate-{certificate.deal_id}-v{version}.pdf",
            content_type="application/pdf",
            content_b64=result.pdf_b64,
        )
        mail(version, certificate.sow_sha256, attachment, result.sha256)

    def _mail_certificate(
        self, version: int, sow_sha256: str, attachment: EmailAttachment, certificate_sha256: str
    ) -> None:
        """The fully signed SOW's certificate, to both parties."""
        self.ctx.notify_both(
            EmailKind.SOW_SIGNED,
            f"sow_signed:v{version}",
            attachments=[attachment],
            sow_sha256=sow_sha256,
            sow_version=version,
            certificate_sha256=certificate_sha256,
        )
