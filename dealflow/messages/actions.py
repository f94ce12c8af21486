"""The human actions a deal accepts (each a signal and an update of DealWorkflow), and the
answer an update gives."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, HttpUrl

from dealflow.messages.base import Message
from dealflow.messages.stages import DealStage
from dealflow.models import MilestoneKey
from dealflow.signers import Signer
from dealflow.text_rules import MultiLineText, SingleLineText, VerbatimText

__all__ = [
    "UNNAMED_OPERATOR",
    "ActionResult",
    "ApproveMilestone",
    "Artifact",
    "CancelDeal",
    "DisputeResolution",
    "OpenDispute",
    "OperatorAction",
    "RequestRevision",
    "ResendAccessCode",
    "ResolveDispute",
    "ReversalSettlement",
    "SettleReversal",
    "SignSow",
    "SubmitDeliverable",
]

#: Who the timeline and ledger name for an operator action that names no operator (a signal
#: sent from the Temporal UI, or by `dealflow signal` without --operator).
UNNAMED_OPERATOR = "(unnamed)"


class Artifact(Message):
    name: SingleLineText = Field(min_length=1, max_length=200)
    url: HttpUrl
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SignSow(Message):
    signer_name: SingleLineText = Field(min_length=2, max_length=200)
    consent: bool
    sow_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="hash the signer saw; must match"
    )
    #: The code mailed apart from the SOW, when the deal asks for one (policy.access_code_above).
    access_code: SingleLineText | None = Field(default=None, max_length=32)
    #: Evidence the bridge takes from the connection, kept as received.
    ip: VerbatimText | None = None
    user_agent: VerbatimText | None = Field(default=None, max_length=500)
    #: Who signs: the bridge takes it from the signer's own portal link or API key.
    party: Signer = "client"


class SubmitDeliverable(Message):
    milestone_key: MilestoneKey
    summary: MultiLineText = Field(min_length=1, max_length=5000)
    artifacts: list[Artifact] = Field(default_factory=list, max_length=50)


class ApproveMilestone(Message):
    milestone_key: MilestoneKey
    approved_by: SingleLineText | None = Field(default=None, max_length=200)


class RequestRevision(Message):
    milestone_key: MilestoneKey
    notes: MultiLineText = Field(min_length=1, max_length=5000)


class OpenDispute(Message):
    milestone_key: MilestoneKey
    reason: MultiLineText = Field(min_length=1, max_length=5000)
    opened_by: Literal["client", "vendor", "operator", "stripe"] = "client"


class DisputeResolution(StrEnum):
    RESUME = "resume"  # back to where the milestone was, timers restart
    RELEASE = "release"  # pay the vendor
    REFUND = "refund"  # give the client their money back


class OperatorAction(Message):
    """An action an operator may take. `operator` names them: the bridge sets it from the admin
    token the request presented (a request body cannot), `dealflow signal` from --operator."""

    operator: SingleLineText | None = Field(default=None, min_length=1, max_length=100)


class ResolveDispute(OperatorAction):
    milestone_key: MilestoneKey
    resolution: DisputeResolution
    notes: MultiLineText = Field(default="", max_length=5000)


class ReversalSettlement(StrEnum):
    RETRY = "retry"  # the vendor's account holds the money again: take it back now
    ABSORB = "absorb"  # the platform bears it (collected from the vendor another way, or written off)


class SettleReversal(OperatorAction):
    """The operator's answer to a transfer reversal Stripe refused (the vendor's balance was short)."""

    milestone_key: MilestoneKey
    action: ReversalSettlement
    notes: MultiLineText = Field(default="", max_length=5000)


class CancelDeal(OperatorAction):
    reason: MultiLineText = Field(min_length=1, max_length=2000)
    requested_by: SingleLineText = Field(default="operator", max_length=200)


class ResendAccessCode(OperatorAction):
    """A fresh access code for the signer, mailed on its own; it unlocks a locked signing."""


class ActionResult(Message):
    """What an update returns to the person who clicked."""

    stage: DealStage
    message: str
