"""The document each numbered version of a statement of work stands for, and its SHA-256.

Version 1 is the SOW text the parties first signed, hashed as it always was. A change order's
version may change the milestones and not the text, so its hash covers both: the SOW text, then
its milestone schedule, one line per milestone (key, title, amount, due) in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dealflow.models import Milestone
from dealflow.money import format_money


def due_text(milestone: Milestone) -> str:
    """When a milestone is due, as the SOW states it."""
    if milestone.deposit:
        return "at signature (deposit)"
    return milestone.due.isoformat() if milestone.due else f"{milestone.due_in_days} days after signing"


def terms_document(sow: str, milestones: Sequence[Milestone], currency: str) -> str:
    """The text a change order's version is signed as."""
    schedule = [
        f"- {m.key}: {m.title}, {format_money(m.amount, currency)}, due {due_text(m)}"
        for m in milestones
    ]
    return "\n".join([sow, "", "Milestones:", *schedule])


def version_sha256(number: int, sow: str, milestones: Sequence[Milestone], currency: str) -> str:
    text = sow if number == 1 else terms_document(sow, milestones, currency)
    return hashlib.sha256(text.encode()).hexdigest()
