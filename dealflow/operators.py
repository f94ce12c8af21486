"""Named operators: who may use the admin API and the dashboard, each with a token of their own.

`DEALFLOW_OPERATORS` is `name:token,...`; `DEALFLOW_ADMIN_TOKEN`, when set, is one more operator
named `admin` (the single token of earlier setups keeps working). The bridge finds the operator
by the token a request presents and puts their name on the action it sends to the deal, so the
deal's timeline and ledger say who did it. Tokens are secrets like the others (`Settings` holds
each to the same placeholder and entropy checks); revoking one is removing its entry.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

OPERATORS = "DEALFLOW_OPERATORS"
#: The operator DEALFLOW_ADMIN_TOKEN stands for; no entry of DEALFLOW_OPERATORS may take it.
ADMIN_OPERATOR = "admin"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


def parse_operators(text: str) -> dict[str, str]:
    """The token of each operator `name:token,...` names; a ValueError names the bad entry
    (never its token)."""
    operators: dict[str, str] = {}
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    for number, entry in enumerate(entries, start=1):
        name, colon, token = (part.strip() for part in entry.partition(":"))
        if not colon or not token:
            raise ValueError(f"entry {number}: expected name:token")
        if not _NAME.match(name):
            raise ValueError(
                f"entry {number}: operator name {name!r} must be 1 to 40 lowercase letters, "
                "digits, '.', '_' or '-', starting with a letter or digit"
            )
        if name == ADMIN_OPERATOR:
            raise ValueError(
                f"entry {number}: the name '{ADMIN_OPERATOR}' is DEALFLOW_ADMIN_TOKEN's; "
                "give this operator a name of their own"
            )
        if name in operators:
            raise ValueError(f"entry {number}: operator '{name}' is named twice")
        if twin := next((other for other, known in operators.items() if known == token), None):
            raise ValueError(
                f"entry {number}: operator '{name}' has the token of '{twin}'; each needs their own"
            )
        operators[name] = token
    if not operators:
        raise ValueError("names no operator; expected name:token,...")
    return operators


def operator_with_token(operators: Mapping[str, str], presented: str) -> str | None:
    """The operator whose token was presented, or None; every token is compared, each in
    constant time, so the answer's timing does not tell which one came close."""
    found = None
    for name, token in operators.items():
        if hmac.compare_digest(presented.encode(), token.encode()):
            found = name
    return found
