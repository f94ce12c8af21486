"""Mail through SMTP (aiosmtplib), rendered from Jinja2 HTML + text templates.

CONTRACT (being implemented): signatures below are fixed; the workflow calls these by reference.
"""

from __future__ import annotations

from temporalio import activity

from dealflow.messages import EmailInput, EmailResult


class EmailActivities:
    @activity.defn
    async def send_email(self, input: EmailInput) -> EmailResult:
        raise NotImplementedError
