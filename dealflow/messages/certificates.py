"""The signing certificate of a countersigned statement of work: what its activity is given
(everything printed, taken from the deal's state, so the same deal renders the same PDF) and
what it returns."""

from __future__ import annotations

from datetime import datetime

from dealflow.messages.base import Message
from dealflow.messages.status import Signature

__all__ = ["CertificateInput", "CertificateResult", "SignerParty"]


class SignerParty(Message):
    """A party as the certificate names them beside their signature."""

    party: str
    name: str
    email: str


class CertificateInput(Message):
    deal_id: str
    deal_title: str
    sow_sha256: str
    sow_version: int
    parties: list[SignerParty]
    signatures: list[Signature]
    #: When the last signature was given: the certificate's date (and its PDF's).
    completed_at: datetime


class CertificateResult(Message):
    pdf_b64: str
    sha256: str
