"""Poison never gets in: the one text rule, and every parser of values clients can forge.

The rule (dealflow.text_rules.text_problem) refuses NUL, lone surrogates and control characters;
single-line fields also refuse line breaks. Message models never refuse text while decoding
(Temporal replays decode them again), so the boundaries check with `text_problems`. Link
tokens, CSRF values, cursors and Stripe events come from anyone: each malformed one is a
refusal of its own kind, never another exception (which the bridge would answer with a 500).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.admin import _decode_cursor
from bridge.csrf import form_token, form_token_valid
from bridge.errors import ApiError
from bridge.stripe_events import MalformedEvent, deal_event
from dealflow.links import InvalidLink, make_token, verify_token
from dealflow.messages import CancelDeal, SignSow, SubmitDeliverable
from dealflow.models import DealSpec
from dealflow.specs import SpecError, load_spec
from dealflow.text_rules import TextRule, first_text_problem, text_problem
from tests.bridge_support import session_completed
from tests.dealflow.test_models import VALID, with_change

SECRET = "s" * 40
ARTIFACT = {"name": "site.zip", "url": "https://files.example/site.zip", "sha256": "ab" * 32}


@pytest.mark.parametrize(
    ("value", "rule", "expected"),
    [
        ("Casey Client", TextRule.SINGLE_LINE, None),
        ("Zoë Ångström 李", TextRule.SINGLE_LINE, None),
        ("Casey\x00", TextRule.SINGLE_LINE, "contains a NUL byte"),
        ("Casey\x00", TextRule.MULTI_LINE, "contains a NUL byte"),
        ("Casey\x00", TextRule.VERBATIM, "contains a NUL byte"),
        ("Casey\ud800", TextRule.SINGLE_LINE, "contains a lone surrogate (U+D800), which is not valid Unicode"),
        ("\udfff", TextRule.VERBATIM, "contains a lone surrogate (U+DFFF), which is not valid Unicode"),
        ("site\n.zip", TextRule.SINGLE_LINE, "contains a line break; it must be a single line"),
        ("site\r.zip", TextRule.SINGLE_LINE, "contains a line break; it must be a single line"),
        ("site\u2028zip", TextRule.SINGLE_LINE, "contains a line break; it must be a single line"),
        ("a\tb", TextRule.SINGLE_LINE, "contains the control character U+0009"),
        ("a\x1bb", TextRule.SINGLE_LINE, "contains the control character U+001B"),
        ("a\x7fb", TextRule.SINGLE_LINE, "contains the control character U+007F"),
        ("a\x85b", TextRule.SINGLE_LINE, "contains the control character U+0085"),
        ("line one\r\n\tline two\n", TextRule.MULTI_LINE, None),
        ("a\x0bb", TextRule.MULTI_LINE, "contains the control character U+000B"),
        ("a\x9fb", TextRule.MULTI_LINE, "contains the control character U+009F"),
        ("a\x1bb\n\x85", TextRule.VERBATIM, None),
    ],
)
def test_one_rule_for_all_text(value: str, rule: TextRule, expected: str | None) -> None:
    assert text_problem(value, rule) == expected


def test_messages_decode_any_text_and_name_the_field_that_breaks_the_rule() -> None:
    """Decoding never refuses (a replayed history must decode); the check names the field."""
    sign = SignSow.model_validate({"signer_name": "Ca\x00sey", "consent": True})
    assert str(first_text_problem(sign)) == "signer_name: contains a NUL byte"
    submit = SubmitDeliverable.model_validate(
        {"milestone_key": "build", "summary": "ok\n", "artifacts": [ARTIFACT, {**ARTIFACT, "name": "evil\r\n.zip"}]}
    )
    assert str(first_text_problem(submit)) == "artifacts[1].name: contains a line break; it must be a single line"
    assert first_text_problem(CancelDeal(reason="client withdrew.\nSee the mail of 2 May.")) is None
    assert first_text_problem(SignSow(signer_name="Casey", consent=True, user_agent="Browser\t1.0")) is None


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("client.name", "Dana\x00", "client.name: contains a NUL byte"),
        ("client.company", "Acme\nInc", "client.company: contains a line break; it must be a single line"),
        ("vendor.name", "North\x07wind", "vendor.name: contains the control character U+0007"),
        ("milestones.1.title", "Bu\u0085ild", "milestones[1].title: contains the control character U+0085"),
        ("milestones.0.description", "a\x0cb", "milestones[0].description: contains the control character U+000C"),
        ("sow", "Build the Acme website.\x00 In three milestones.", "sow: contains a NUL byte"),
    ],
)
def test_spec_text_is_refused_naming_the_field(tmp_path: Path, path: str, value: str, expected: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(with_change(path, value)))
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert caught.value.problems == [expected]
    assert first_text_problem(DealSpec.model_validate(with_change(path, value))) is not None


def test_lone_surrogates_never_decode_into_a_model(tmp_path: Path) -> None:
    """pydantic itself refuses them, already while decoding, naming the field."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(with_change("title", "Acme\ud800 site")))
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert caught.value.problems == ["title: Input should be a valid string, unable to parse raw data as a unicode string"]


def test_multi_line_spec_text_keeps_tabs_and_line_breaks(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(with_change("sow", "Build the Acme website:\r\n\t- design\n\t- build\n")))
    assert load_spec(spec).sow.startswith("Build the Acme website:\r\n\t")
    assert VALID["title"] == load_spec(spec).title


# --------------------------------------------------------------------------- forgeable values


def _signed_link(payload: bytes, secret: str = SECRET) -> str:
    """A token as links.py documents it, over any payload: what a leaked key could mint."""
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac.rstrip(b'=').decode()}"


MALFORMED_TOKENS = [
    "",
    ".",
    "abc",
    "a.b",
    "é.é",
    "ä" * 40,
    "tok\x00en.mac",
    "x.\udc80",
    "!!!!.####",
    _signed_link(b"not json"),
    _signed_link(b"\xff\xfe"),
    _signed_link(b"[1, 2]"),
    _signed_link(b'{"deal": "d1"}'),
    _signed_link(b'{"deal": "d1", "exp": "soon"}'),
    _signed_link(b'{"deal": "d1", "exp": 1e400}'),
    _signed_link(b'{"deal": "d1", "exp": 100000000000000000000}'),
    _signed_link(b'{"deal": "d1", "exp": -100000000000000000000}'),
    _signed_link(b'{"deal": "d1", "exp": ' + b"9" * 5000 + b"}"),
    _signed_link(b'{"deal": "other", "exp": 4102444800}'),
]


@pytest.mark.parametrize("token", MALFORMED_TOKENS)
def test_malformed_link_tokens_are_invalid_links(token: str) -> None:
    with pytest.raises(InvalidLink):
        verify_token(SECRET, "d1", token)


@pytest.mark.parametrize("deal_id", ["d1\x00", "dé1", "d1\n"])
def test_a_valid_token_names_only_its_own_deal(deal_id: str) -> None:
    token = make_token(SECRET, "d1", datetime.now(UTC) + timedelta(days=1))
    assert verify_token(SECRET, "d1", token) > datetime.now(UTC)
    with pytest.raises(InvalidLink, match="another deal"):
        verify_token(SECRET, deal_id, token)


@pytest.mark.parametrize("presented", ["", "A" * 43, "é" * 43, "\x00", "csrf\udc80", "٣" * 43])
def test_malformed_csrf_values_are_invalid(presented: str) -> None:
    link = make_token(SECRET, "d1", datetime.now(UTC) + timedelta(days=1))
    assert form_token_valid(SECRET, "d1", link, form_token(SECRET, "d1", link))
    assert not form_token_valid(SECRET, "d1", link, presented)


def _cursor(data: object) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MALFORMED_CURSORS = [
    "é",
    "\x00",
    "!!!",
    "=",
    _cursor(b"not json"),
    _cursor(b"\xff\xfe"),
    _cursor(b"[" * 5000),
    _cursor({"created_at": "2026-01-01T00:00:00+00:00"}),
    _cursor(["2026-01-01T00:00:00+00:00"]),
    _cursor(["2026-01-01T00:00:00", "acme-site"]),
    _cursor(["2026-13-45T00:00:00+00:00", "acme-site"]),
    _cursor(["0001-01-01T00:00:00+05:00", "acme-site"]),
    _cursor(["9999-12-31T23:59:59-05:00", "acme-site"]),
    _cursor([10**30, "acme-site"]),
    _cursor(["2026-01-01T00:00:00+00:00", "acme\x00site"]),
    _cursor(["2026-01-01T00:00:00+00:00", "acme\ud800site"]),
    _cursor(["2026-01-01T00:00:00+00:00", 12]),
]


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
def test_malformed_cursors_are_422(cursor: str) -> None:
    with pytest.raises(ApiError) as caught:
        _decode_cursor(cursor)
    assert (caught.value.status, caught.value.field) == (422, "cursor")


def test_a_cursor_of_ours_names_its_position() -> None:
    assert _decode_cursor(_cursor(["2026-01-01T10:00:00+02:00", "acme-site"])) == (
        datetime(2026, 1, 1, 8, tzinfo=UTC),
        "acme-site",
    )


def _event_with(**changes: object) -> dict:
    event = session_completed("acme-site", "build", 120000)
    for dotted, value in changes.items():
        node = event
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return event


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"id": "evt_1\x00"}, "id"),
        ({"type": "checkout.session.completed\n"}, "type"),
        ({"data__object__metadata": {"deal_id": "acme\nsite", "milestone_key": "build"}}, "metadata.deal_id"),
        ({"data__object__metadata": {"deal_id": "acme-site", "milestone_key": "bu\x1bild"}}, "milestone_key"),
        ({"created": 10**20}, "not a Stripe event"),
        ({"created": 1e400}, "not a Stripe event"),
        ({"data__object__amount_total": 2**63}, "out of range"),
        ({"data__object__amount_total": -1}, "out of range"),
    ],
)
def test_stripe_events_dealflow_cannot_keep_are_malformed(changes: dict, expected: str) -> None:
    assert deal_event(session_completed("acme-site", "build", 120000))[0] == "acme-site"
    with pytest.raises(MalformedEvent, match=expected):
        deal_event(_event_with(**changes))
