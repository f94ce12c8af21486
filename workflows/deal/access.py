"""The signer's access code: when the deal's total is above `policy.access_code_above`, the
client signs only with a code mailed on its own (not in the SOW mail, and with no portal link),
so whoever holds the SOW mail alone cannot sign.

The worker makes the code from the secret key and mails it (`send_access_code`,
ACCESS_CODES_FROM_WORKER; before it, the code came from the workflow's seeded random, which the
run id gives away); the deal keeps only its hash, and no query or timeline entry shows either. Each wrong code counts; after
`policy.access_code_attempts` signing locks, the client and the operator are told, and only a
new code (`resend_access_code`, by an operator) opens it again. Deals before DEAL_TERMS never
ask for one.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.access_codes import CODE_DIGITS, access_code_digest, access_code_matches
    from dealflow.contract import EventKind
    from dealflow.messages import (
        AccessCodeMail,
        AccessCodeSent,
        AccessCodeStatus,
        EmailKind,
        ResendAccessCode,
        SignSow,
    )
    from workflows import calls, rules
    from workflows.deal.context import DealContext
    from workflows.deal.patches import ACCESS_CODES_FROM_WORKER
    from workflows.journal import Source


class AccessCode:
    def __init__(self, ctx: DealContext) -> None:
        self.ctx = ctx
        above = ctx.policy.access_code_above
        self.required = ctx.deal_terms and above is not None and ctx.spec.total_amount > above
        self.attempts = ctx.policy.access_code_attempts
        self._digest = ""
        self._sent = 0
        self._wrong = 0

    @property
    def locked(self) -> bool:
        return self.required and self._wrong >= self.attempts

    def status(self) -> AccessCodeStatus | None:
        if not self.required:
            return None
        return AccessCodeStatus(
            codes_sent=self._sent,
            wrong_attempts=self._wrong,
            attempts_left=max(0, self.attempts - self._wrong),
            locked=self.locked,
        )

    def take_up(self, carried: AccessCodeStatus | None) -> None:
        """What an earlier run of the deal counted (`Continuation`); signing is over by then,
        so only the status needs it."""
        if carried is not None:
            self._sent, self._wrong = carried.codes_sent, carried.wrong_attempts

    def send(self, source: Source = "workflow") -> None:
        """A fresh code, mailed on its own; the one before it stops working, and the count of
        wrong codes starts again."""
        ctx = self.ctx
        self._sent += 1
        self._wrong = 0
        ctx.record(
            source,
            EventKind.ACCESS_CODE_SENT,
            f"Access code {self._sent} sent to {ctx.spec.client.email} in a mail of its own",
        )
        key = f"access_code:{self._sent}"
        if not workflow.patched(ACCESS_CODES_FROM_WORKER):
            code = f"{workflow.random().randrange(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            self._digest = access_code_digest(ctx.spec.deal_id, self._sent, code)
            ctx.notify(EmailKind.ACCESS_CODE, "client", key, access_code=code)
            return
        # No code works until the worker has made and mailed this one.
        self._digest = ""
        issue = self._sent
        mail = AccessCodeMail(
            email=ctx.email(EmailKind.ACCESS_CODE, "client", key, None, access_code=None),
            issue=issue,
        )
        ctx.beside(
            f"the access code mail to {mail.email.to}",
            calls.SEND_ACCESS_CODE,
            mail,
            None,
            then=lambda sent: self._keep(issue, sent),
        )

    async def _keep(self, issue: int, sent: AccessCodeSent) -> None:
        """The digest of a code the worker mailed, unless a newer code went out meanwhile."""
        if issue == self._sent:
            self._digest = sent.digest

    # ------------------------------------------------------------------ the signer's action

    def refusal(self, sign: SignSow) -> str | None:
        """What the validator may say without comparing the code (see `admit`)."""
        if not self.required:
            return None
        return rules.access_code_refusal(sign.access_code, locked=self.locked, attempts=self.attempts)

    def admit(self, sign: SignSow) -> str | None:
        """Compare the code, in the handler: a wrong one must count, which a validator (its
        refusals leave no history) cannot do. The last allowed wrong code locks signing."""
        ctx = self.ctx
        if not self.required or access_code_matches(
            self._digest, ctx.spec.deal_id, self._sent, sign.access_code or ""
        ):
            return None
        self._wrong += 1
        ctx.record(
            "client",
            EventKind.ACCESS_CODE_WRONG,
            f"Wrong access code entered ({self._wrong} of {self.attempts} allowed)",
        )
        if self.locked:
            self._lock()
        return rules.wrong_access_code(self._wrong, self.attempts)

    def _lock(self) -> None:
        ctx = self.ctx
        ctx.record(
            "workflow",
            EventKind.SIGNING_LOCKED,
            f"Signing locked after {self.attempts} wrong access codes; an operator sends a new "
            "code with resend_access_code",
        )
        key = f"signing_locked:{self._sent}"
        ctx.notify(EmailKind.SIGNING_LOCKED, "client", key, attempts=self.attempts, for_operator=False)
        ctx.notify_operator(
            EmailKind.SIGNING_LOCKED, f"{key}:operator", attempts=self.attempts, for_operator=True
        )

    # ------------------------------------------------------------------ the operator's action
    # (checked first by `rules.resend_refusal`)

    def resend(self, resend: ResendAccessCode) -> str:
        self.send("operator")
        return f"Access code {self._sent} sent to the client in a mail of its own"
