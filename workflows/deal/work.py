"""Work and review: the vendor gets the work order (or a revision), is told when it is overdue,
and delivers; the client reviews, is reminded, approves or asks for a revision, and silence
approves when the review window ends (Upwork releases after 14 days)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import EventKind
    from dealflow.messages import (
        ApproveMilestone,
        Deliverable,
        EmailKind,
        MilestoneState,
        RequestRevision,
        SubmitDeliverable,
        WorkOrderInput,
    )
    from workflows import calls, rules
    from workflows.deal.capture import Capture
    from workflows.deal.context import DealContext
    from workflows.deal.timers import Timer
    from workflows.mail import artifact_context
    from workflows.milestone import MilestoneRun

S = MilestoneState


class Work:
    def __init__(self, ctx: DealContext, capture: Capture) -> None:
        self.ctx = ctx
        self.capture = capture

    def hand_off(self, m: MilestoneRun, revision: int = 0, notes: str | None = None) -> None:
        """Tell the vendor to start work (or revision N): a mail, and a signed POST where they
        take one."""
        ctx = self.ctx
        if revision == 0:
            ctx.notify(EmailKind.WORK_ORDER, "vendor", f"work_order:{m.key}", m)
        else:
            ctx.notify(
                EmailKind.REVISION_REQUESTED,
                "vendor",
                f"revision_requested:{m.key}:{revision}",
                m,
                notes=notes,
            )
        if ctx.spec.vendor.fulfillment_url is None:
            return
        order = WorkOrderInput(
            deal_id=ctx.spec.deal_id,
            milestone_key=m.key,
            fulfillment_url=str(ctx.spec.vendor.fulfillment_url),
            title=m.title,
            description=m.spec.description,
            amount=m.spec.amount,
            currency=ctx.spec.currency,
            due=m.due.isoformat() if m.due else None,
            sow_sha256=ctx.sow_sha256,
            revision=revision,
            notes=notes,
        )
        ctx.beside("sending the work order to the vendor", calls.DISPATCH_WORK_ORDER, order, m)

    # ------------------------------------------------------------------ the phases

    async def work_phase(self, m: MilestoneRun) -> None:
        await self.ctx.timers.run(
            lambda: m.state is S.IN_PROGRESS,
            lambda: [
                Timer(
                    m.next_overdue_at,
                    "tell the vendor the delivery is overdue",
                    lambda: self._overdue_notice(m),
                ),
                *self.capture.timers(m),
            ],
        )

    async def _overdue_notice(self, m: MilestoneRun) -> None:
        m.overdue_notices += 1
        m.next_overdue_at = workflow.now() + self.ctx.policy.reminder_interval
        self.ctx.record(
            "timer",
            EventKind.DELIVERY_OVERDUE,
            f"'{m.title}' was due {m.due}: overdue notice {m.overdue_notices} sent to the vendor",
            m,
        )
        self.ctx.notify(
            EmailKind.DELIVERY_OVERDUE, "vendor", f"delivery_overdue:{m.key}:{m.overdue_notices}", m
        )

    async def review_phase(self, m: MilestoneRun) -> None:
        await self.ctx.timers.run(
            lambda: m.state is S.DELIVERED,
            lambda: [
                Timer(
                    m.review_deadline,
                    "approve automatically: the review window ends",
                    lambda: self._auto_approve(m),
                ),
                Timer(
                    m.next_review_reminder_at,
                    "remind the client to review",
                    lambda: self._review_reminder(m),
                ),
                *self.capture.timers(m),
            ],
        )

    async def _review_reminder(self, m: MilestoneRun) -> None:
        m.review_reminders += 1
        m.next_review_reminder_at = workflow.now() + self.ctx.policy.reminder_interval
        self.ctx.record(
            "timer",
            EventKind.REVIEW_REMINDER,
            f"Review reminder {m.review_reminders} for '{m.title}'",
            m,
        )
        self.ctx.notify(
            EmailKind.REVIEW_REMINDER, "client", f"review_reminder:{m.key}:{m.review_reminders}", m
        )

    async def _auto_approve(self, m: MilestoneRun) -> None:
        self.ctx.set_state(
            m,
            S.APPROVED,
            "timer",
            EventKind.APPROVED,
            f"No answer within the {rules.span(self.ctx.policy.review_window)} review window: "
            f"'{m.title}' approved automatically",
        )

    # ------------------------------------------------------------------ the people's actions
    # (each checked first by its rule in `workflows.rules`)

    def submit(self, submit: SubmitDeliverable) -> str:
        ctx = self.ctx
        m = ctx.milestones[submit.milestone_key]
        m.deliverables.append(
            Deliverable(
                summary=submit.summary,
                artifacts=submit.artifacts,
                submitted_at=workflow.now(),
                revision=m.revisions,
            )
        )
        ctx.set_state(
            m,
            S.DELIVERED,
            "vendor",
            EventKind.DELIVERED,
            f"Deliverable for '{m.title}' submitted ({len(submit.artifacts)} files): {submit.summary}",
        )
        assert m.review_deadline
        ctx.notify(
            EmailKind.DELIVERABLE_READY,
            "client",
            f"deliverable_ready:{m.key}:{m.revisions}",
            m,
            summary=submit.summary,
            artifacts=[artifact_context(a) for a in submit.artifacts],
            review_deadline=m.review_deadline.isoformat(),
        )
        return f"Delivered: the client has until {m.review_deadline.isoformat()} to review"

    def approve(self, approve: ApproveMilestone) -> str:
        m = self.ctx.milestones[approve.milestone_key]
        self.ctx.set_state(
            m,
            S.APPROVED,
            "client",
            EventKind.APPROVED,
            f"'{m.title}' approved by {approve.approved_by or 'the client'}",
        )
        return "Approved: the payment is being released to the vendor"

    def revise(self, revise: RequestRevision) -> str:
        ctx = self.ctx
        m = ctx.milestones[revise.milestone_key]
        m.revisions += 1
        ctx.set_state(
            m,
            S.REVISION_REQUESTED,
            "client",
            EventKind.REVISION_REQUESTED,
            f"Revision {m.revisions} of {ctx.policy.max_revisions} requested for "
            f"'{m.title}': {revise.notes}",
        )
        self.hand_off(m, m.revisions, revise.notes)
        ctx.set_state(
            m,
            S.IN_PROGRESS,
            "workflow",
            EventKind.WORK_RESUMED,
            f"The vendor is revising '{m.title}'",
        )
        return f"Revision {m.revisions} of {ctx.policy.max_revisions} requested"
