"""Change orders: a proposed new version of the statement of work and its terms, the client's
answer, and the numbered versions the `status` query shows."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from dealflow.messages.actions import OperatorAction
from dealflow.messages.base import Message
from dealflow.models import MAX_MILESTONES, Milestone
from dealflow.text_rules import MultiLineText, SingleLineText, VerbatimText

__all__ = [
    "AcceptAmendment",
    "AmendmentTerms",
    "DeclineAmendment",
    "ProposeAmendment",
    "SowVersion",
]


class AmendmentTerms(Message):
    """New terms for a signed deal: the whole milestone list as it is to be (a key left out is
    removed, a new key added, a changed one re-priced or re-dated) and, if it changes, the SOW
    text. Milestones already funded, released or disputed must be given unchanged."""

    reason: MultiLineText = Field(min_length=1, max_length=2000)
    milestones: list[Milestone] = Field(min_length=1, max_length=MAX_MILESTONES)
    sow: MultiLineText | None = Field(default=None, min_length=20, max_length=100_000)


class ProposeAmendment(AmendmentTerms, OperatorAction):
    """The terms, and who proposes them (the bridge says so from the key that sent them; an
    operator's proposal names the operator too)."""

    proposed_by: Literal["operator", "vendor"] = "operator"


class AcceptAmendment(Message):
    """The client signs the proposed version: the same evidence as the first signature."""

    version: int = Field(ge=2)
    signer_name: SingleLineText = Field(min_length=2, max_length=200)
    consent: bool
    sow_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="hash of the version the signer saw"
    )
    ip: VerbatimText | None = None
    user_agent: VerbatimText | None = Field(default=None, max_length=500)


class DeclineAmendment(Message):
    version: int = Field(ge=2)
    reason: MultiLineText = Field(default="", max_length=2000)


class SowVersion(Message):
    """One numbered version of the SOW and its terms. Version 1 is the one first signed; a
    later one is `proposed` until the client accepts it (it becomes `current`, the one before
    `superseded`) or declines it, or a newer proposal supersedes it."""

    number: int
    state: Literal["proposed", "current", "superseded", "declined"]
    sow: str
    sow_sha256: str
    milestones: list[Milestone]
    total_amount: int
    proposed_by: str | None = None
    reason: str | None = None
    at: datetime | None = None
    #: The version that replaced this one, if any.
    superseded_by: int | None = None
