"""A deal's access codes: made by the worker from the secret key, kept by the deal as a hash.

A code is an HMAC of the deal and the code's number under DEALFLOW_SECRET_KEY, so nothing in a
deal's history gives it away (a code drawn from the workflow's seeded random could be found
again by anyone who knows the run id), and a retried mail carries the same code. The deal keeps
only the code's digest, which its sign handler compares.
"""

from __future__ import annotations

import hashlib
import hmac

#: Digits of a code: one chance in a million per try, and a few tries before signing locks.
CODE_DIGITS = 6


def access_code(secret_key: str, deal_id: str, issue: int) -> str:
    """The deal's `issue`-th code, six digits."""
    mac = hmac.new(secret_key.encode(), f"dealflow-access-code:{deal_id}:{issue}".encode(), hashlib.sha256)
    return f"{int.from_bytes(mac.digest()[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def access_code_digest(deal_id: str, issue: int, code: str) -> str:
    """What the deal keeps of its `issue`-th code: a hash, never the code."""
    return hashlib.sha256(f"dealflow-access-code:{deal_id}:{issue}:{code}".encode()).hexdigest()


def access_code_matches(digest: str, deal_id: str, issue: int, code: str) -> bool:
    """Whether `code` (spaces and dashes as people type them are ignored) is the one kept."""
    typed = "".join(c for c in code if c not in " -")
    return hmac.compare_digest(digest, access_code_digest(deal_id, issue, typed))
