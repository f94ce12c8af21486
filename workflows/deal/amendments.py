"""Change orders: new terms for a signed deal, proposed by the operator or the vendor, accepted
(a new signature with the same evidence as the first) or declined by the client.

Every version of the SOW and its terms is kept, numbered: version 1 is the one first signed,
each proposal the next number. A newer proposal supersedes one still awaiting an answer. When
the client accepts, the new terms are in force at once: milestones not yet funded are added,
removed (cancelled), re-priced, re-titled and re-dated; a milestone whose payment link is out
gets a new link for its new amount or title (`Checkout.funding_phase`; a re-title since
CHANGE_ORDERS_AMENDED). In a countersigned deal the acceptance has a signing certificate of its
own (since CHANGE_ORDERS_AMENDED), attached to the answer both parties get. Deals started before DEAL_TERMS refuse
amendments.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import EventKind
    from dealflow.messages import (
        AcceptAmendment,
        DeclineAmendment,
        EmailAttachment,
        EmailKind,
        MilestoneState,
        ProposeAmendment,
        Signature,
        SowVersion,
    )
    from dealflow.models import DealSpec, Milestone
    from dealflow.versions import due_text, version_sha256
    from workflows import rules
    from workflows.deal.context import DealContext
    from workflows.deal.patches import CHANGE_ORDERS_AMENDED
    from workflows.deal.signing import Signing
    from workflows.milestone import MilestoneRun

S = MilestoneState


class Amendments:
    def __init__(self, ctx: DealContext, signing: Signing) -> None:
        self.ctx = ctx
        self.signing = signing
        spec = ctx.spec
        self.versions = [self._version(1, spec, "current")]
        #: The client's signatures of accepted amendments.
        self.signatures: list[Signature] = []

    def _version(self, number: int, spec: DealSpec, state: str, **given: Any) -> SowVersion:
        return SowVersion(
            number=number,
            state=state,  # type: ignore[arg-type]
            sow=spec.sow,
            sow_sha256=version_sha256(number, spec.sow, spec.milestones, spec.currency),
            milestones=list(spec.milestones),
            total_amount=spec.total_amount,
            **given,
        )

    @property
    def current(self) -> SowVersion:
        return next(v for v in reversed(self.versions) if v.state == "current")

    def client_signature(self) -> Signature | None:
        """The client's signature of the terms in force: the last amendment they accepted, or
        the SOW they first signed (the evidence a chargeback is answered with)."""
        return self.signatures[-1] if self.signatures else self.signing.signature

    # ------------------------------------------------------------------ refusals

    def proposal_refusal(self, proposal: ProposeAmendment) -> str | None:
        ctx = self.ctx
        if not ctx.deal_terms:
            return "this deal was started before change orders; its terms cannot be amended"
        return rules.amendment_refusal(ctx.stage, ctx.milestones, ctx.spec, proposal)

    def accept_refusal(self, accept: AcceptAmendment) -> str | None:
        return rules.answer_refusal(self.versions, accept.version, accept.consent, accept.sow_sha256)

    def decline_refusal(self, decline: DeclineAmendment) -> str | None:
        return rules.answer_refusal(self.versions, decline.version, None, None)

    # ------------------------------------------------------------------ actions

    def propose(self, proposal: ProposeAmendment) -> str:
        ctx = self.ctx
        amended = rules.amended_spec(ctx.spec, proposal)
        assert isinstance(amended, DealSpec)  # the refusal checked it
        number = len(self.versions) + 1
        for earlier in self.versions:
            if earlier.state == "proposed":
                earlier.state, earlier.superseded_by = "superseded", number
        version = self._version(
            number,
            amended,
            "proposed",
            proposed_by=proposal.proposed_by,
            reason=proposal.reason,
            at=workflow.now(),
        )
        self.versions.append(version)
        before = self.current
        ctx.record(
            proposal.proposed_by,
            EventKind.AMENDMENT_PROPOSED,
            f"Amendment proposed by the {proposal.proposed_by}: version {number} "
            f"(SHA-256 {version.sow_sha256[:12]}…), total {ctx.money(before.total_amount)} → "
            f"{ctx.money(version.total_amount)}: {proposal.reason}",
            detail={"version": version.model_dump(mode="json")},
        )
        ctx.notify(
            EmailKind.AMENDMENT_PROPOSED,
            "client",
            f"amendment_proposed:{number}",
            version=number,
            sow_sha256=version.sow_sha256,
            reason=proposal.reason,
            proposed_by=proposal.proposed_by,
            changes=self._changes(before, version),
            total_before=ctx.money(before.total_amount),
            total_after=ctx.money(version.total_amount),
        )
        return f"Version {number} proposed; the client is asked to accept or decline it."

    def accept(self, accept: AcceptAmendment) -> str:
        ctx = self.ctx
        version = next(v for v in self.versions if v.number == accept.version)
        signature = Signature(
            signer_name=accept.signer_name,
            signed_at=workflow.now(),
            sow_sha256=version.sow_sha256,
            ip=accept.ip,
            user_agent=accept.user_agent,
            party="client",
            sow_version=version.number,
            consent=accept.consent,
        )
        self.signatures.append(signature)
        before = self.current
        before.state, before.superseded_by = "superseded", version.number
        version.state = "current"
        ctx.record(
            "client",
            EventKind.AMENDMENT_ACCEPTED,
            f"Amendment version {version.number} accepted and signed by {accept.signer_name} "
            f"(consent given; IP {accept.ip or 'unknown'}; SHA-256 {version.sow_sha256[:12]}…)",
            detail={"signature": signature.model_dump(mode="json")},
        )
        self._enact(version)
        if self.signing.countersigned and workflow.patched(CHANGE_ORDERS_AMENDED):
            # As the first signing of a countersigned deal: the answer carries the certificate.
            self.signing.issue_certificate(
                version.number,
                version.sow_sha256,
                [signature],
                lambda _number, _sha256, attachment, certificate_sha256: self._answered(
                    version, accepted=True, reason="", certificate=(attachment, certificate_sha256)
                ),
            )
            return f"Version {version.number} is in force: thank you. Its signing certificate is on its way by mail."
        self._answered(version, accepted=True, reason="")
        return f"Version {version.number} is in force: thank you."

    def decline(self, decline: DeclineAmendment) -> str:
        ctx = self.ctx
        version = next(v for v in self.versions if v.number == decline.version)
        version.state = "declined"
        ctx.record(
            "client",
            EventKind.AMENDMENT_DECLINED,
            f"Amendment version {version.number} declined"
            + (f": {decline.reason}" if decline.reason else ""),
            detail={"version": version.number, "reason": decline.reason},
        )
        self._answered(version, accepted=False, reason=decline.reason)
        return f"Version {version.number} declined; version {self.current.number} stays in force."

    def _answered(
        self,
        version: SowVersion,
        *,
        accepted: bool,
        reason: str,
        certificate: tuple[EmailAttachment, str] | None = None,
    ) -> None:
        """The client's answer, to both parties (with the signing certificate of the version
        accepted, and its SHA-256, when there is one)."""
        attachment, certificate_sha256 = certificate or (None, None)
        self.ctx.notify_both(
            EmailKind.AMENDMENT_ANSWERED,
            f"amendment_answered:{version.number}",
            attachments=[attachment] if attachment else None,
            version=version.number,
            accepted=accepted,
            sow_sha256=version.sow_sha256,
            reason=reason,
            certificate_sha256=certificate_sha256,
        )

    # ------------------------------------------------------------------ the new terms

    def _enact(self, version: SowVersion) -> None:
        """The accepted terms in force: milestone runs added, changed or cancelled, in the
        version's order (milestones removed, now or before, after them)."""
        ctx = self.ctx
        signed = self.signing.signature
        signed_on = (signed.signed_at if signed else workflow.now()).date()
        runs = dict(ctx.milestones)
        ordered: dict[str, MilestoneRun] = {}
        for terms in version.milestones:
            run = runs.pop(terms.key, None)
            if run is None:
                run = MilestoneRun(spec=terms)
                run.set_due(signed_on)
                self._amended(run, f"'{terms.title}' added: {ctx.money(terms.amount)}")
            elif run.spec != terms:
                if run.state is S.AWAITING_FUNDING and (
                    run.spec.amount != terms.amount
                    or (run.spec.title != terms.title and workflow.patched(CHANGE_ORDERS_AMENDED))
                ):
                    run.terms_changed = True
                elif run.state is S.AWAITING_FUNDING:
                    # Re-dated (or a late fee of its own): the link stays, its dates are planned
                    # again from the new due date (`Checkout.funding_phase`).
                    run.payment_due_at = None
                before = run.spec
                run.spec = terms
                run.set_due(signed_on)
                self._amended(
                    run,
                    f"'{terms.title}' now {_terms_line(ctx, terms)} (was {_terms_line(ctx, before)})",
                )
            ordered[terms.key] = run
        for run in runs.values():
            if run.state in rules.AMENDABLE:
                run.state = S.CANCELLED
                self._amended(run, f"'{run.title}' removed ({ctx.money(run.spec.amount)})")
            ordered[run.key] = run
        ctx.milestones.clear()
        ctx.milestones.update(ordered)
        ctx.amend(
            ctx.spec.model_copy(update={"sow": version.sow, "milestones": version.milestones}),
            version.sow_sha256,
        )

    def _amended(self, run: MilestoneRun, message: str) -> None:
        self.ctx.record("workflow", EventKind.MILESTONE_AMENDED, message, run)

    def _changes(self, before: SowVersion, after: SowVersion) -> list[dict[str, str]]:
        """The side-by-side of two versions for the mail: each milestone whose terms differ,
        before and after ("—" where it is absent), and the SOW text if it changed."""
        old = {m.key: m for m in before.milestones}
        new = {m.key: m for m in after.milestones}
        keys = [*new, *(key for key in old if key not in new)]
        changes = [
            {
                "key": key,
                "before": _terms_line(self.ctx, old.get(key)),
                "after": _terms_line(self.ctx, new.get(key)),
            }
            for key in keys
            if old.get(key) != new.get(key)
        ]
        if before.sow != after.sow:
            changes.append({"key": "SOW text", "before": "in force", "after": "changed (see the portal)"})
        return changes


def _terms_line(ctx: DealContext, m: Milestone | None) -> str:
    return f"{m.title}, {ctx.money(m.amount)}, due {due_text(m)}" if m else "—"
