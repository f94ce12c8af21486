"""Access codes: derived from the secret key by the worker, kept by the deal as a hash."""

from __future__ import annotations

from dealflow.access_codes import access_code, access_code_digest, access_code_matches


def test_only_a_hash_of_the_code_is_kept_and_it_matches_that_code_of_that_deal_alone() -> None:
    digest = access_code_digest("d1", 1, "048213")
    assert "048213" not in digest and len(digest) == 64
    assert access_code_matches(digest, "d1", 1, "048213")
    assert access_code_matches(digest, "d1", 1, " 048-213 ")  # as people type it
    assert not access_code_matches(digest, "d1", 1, "048214")
    assert not access_code_matches(digest, "d1", 2, "048213")  # a later code replaces it
    assert not access_code_matches(digest, "d2", 1, "048213")
    assert not access_code_matches("", "d1", 1, "")


def test_a_code_is_six_digits_of_the_secret_key_the_deal_and_its_number() -> None:
    code = access_code("k" * 32, "d1", 1)
    assert len(code) == 6 and code.isdigit()
    assert access_code("k" * 32, "d1", 1) == code  # a retried mail carries the same code
    others = {access_code("k" * 32, "d1", 2), access_code("k" * 32, "d2", 1), access_code("j" * 32, "d1", 1)}
    assert code not in others and len(others) == 3
    assert len({access_code("k" * 32, "d1", n) for n in range(1, 201)}) > 190  # spread, not a pattern
