"""What a text field may hold, and the check that finds every field breaking its rule.

Text fields are marked in `Annotated` (`SingleLineText`, `MultiLineText`, `VerbatimText`) and
checked at the boundaries (bridge, starter, workflow actions) with `text_problems`, never by a
validator (see `TextRule`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo


class TextRule(StrEnum):
    """What a text field may hold. A marker in `Annotated`, never a validator: Temporal decodes
    old signal, update and start payloads again on every replay, and a validator raising there
    would fail the workflow task for good. Boundaries check with `text_problems` instead."""

    #: Names, titles, file names, keys: one line, no control characters at all.
    SINGLE_LINE = "single_line"
    #: SOW, summaries, notes, reasons: TAB, LF and CR are allowed, other controls are not.
    MULTI_LINE = "multi_line"
    #: Kept as received (request headers, Stripe's strings): only what Postgres cannot store.
    VERBATIM = "verbatim"


SingleLineText = Annotated[str, TextRule.SINGLE_LINE]
MultiLineText = Annotated[str, TextRule.MULTI_LINE]
VerbatimText = Annotated[str, TextRule.VERBATIM]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: CR, LF and Unicode's line and paragraph separators: a mail header or log line ends there.
_LINE_BREAK = re.compile("[\r\n\u2028\u2029]")
_CONTROLS = {
    TextRule.SINGLE_LINE: re.compile("[\x00-\x1f\x7f-\x9f]"),
    TextRule.MULTI_LINE: re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"),
}


def text_problem(value: str, rule: TextRule) -> str | None:
    """What is wrong with `value` under `rule`, or None. The message never quotes the bad
    character itself: a lone surrogate cannot even be encoded into an error response."""
    if "\x00" in value:
        return "contains a NUL byte"
    if surrogate := _LONE_SURROGATE.search(value):
        return f"contains a lone surrogate (U+{ord(surrogate.group()):04X}), which is not valid Unicode"
    if rule is TextRule.VERBATIM:
        return None
    if rule is TextRule.SINGLE_LINE and _LINE_BREAK.search(value):
        return "contains a line break; it must be a single line"
    if control := _CONTROLS[rule].search(value):
        return f"contains the control character U+{ord(control.group()):04X}"
    return None


@dataclass(frozen=True)
class TextProblem:
    """One text field that breaks its rule, e.g. `client.name: contains a NUL byte`."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def text_problems(model: BaseModel, prefix: str = "") -> Iterator[TextProblem]:
    """Every marked text field of `model`, and of the models inside it, that breaks its rule."""
    for name, rule in _field_rules(type(model)):
        yield from _value_problems(getattr(model, name), rule, f"{prefix}{name}")


def first_text_problem(model: BaseModel) -> TextProblem | None:
    return next(text_problems(model), None)


def _value_problems(value: object, rule: TextRule | None, path: str) -> Iterator[TextProblem]:
    if isinstance(value, BaseModel):
        yield from text_problems(value, f"{path}.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _value_problems(item, rule, f"{path}[{index}]")
    elif isinstance(value, str) and rule is not None and (problem := text_problem(value, rule)):
        yield TextProblem(path, problem)


@functools.cache
def _field_rules(model: type[BaseModel]) -> tuple[tuple[str, TextRule | None], ...]:
    """Each field of `model` with its TextRule, worked out once per class (every webhook and
    every action is checked)."""
    return tuple((name, _rule_of(field)) for name, field in model.model_fields.items())


def _rule_of(field: FieldInfo) -> TextRule | None:
    """The field's TextRule; for `SingleLineText | None` it sits inside the union."""
    nested = (
        marker for arg in get_args(field.annotation) for marker in getattr(arg, "__metadata__", ())
    )
    return next((m for m in (*field.metadata, *nested) if isinstance(m, TextRule)), None)
