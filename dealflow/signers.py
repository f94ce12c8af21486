"""Who signs a deal's statement of work, and in which order.

A spec's `signing_order` lists the parties who sign, first signer first. The client always
signs; with the vendor in the list the SOW is countersigned, and the deal's work starts only
once every listed party has signed. The default, the client alone, is how deals were signed
before countersignatures existed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

#: A party who signs: the client who pays, or the vendor who does the work.
Signer = Literal["client", "vendor"]


def _valid_order(order: list[Signer]) -> list[Signer]:
    if len(set(order)) != len(order):
        raise ValueError("names a party twice; each party signs once")
    if "client" not in order:
        raise ValueError("must include 'client': the client always signs the statement of work")
    return order


SigningOrder = Annotated[
    list[Signer],
    Field(min_length=1, max_length=2, description="who signs the SOW, first signer first"),
    AfterValidator(_valid_order),
]


def countersigned(order: list[Signer]) -> bool:
    """Whether more than the client signs (and so the deal gets a signing certificate)."""
    return len(order) > 1
