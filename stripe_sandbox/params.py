"""Stripe's request parameters: form-encoded nested keys in, validated Python values out.

The `stripe` library sends `line_items[0][price_data][unit_amount]=5000`; `decode_form` turns that
into nested dicts, and a per-endpoint schema checks names and types the way Stripe does: an unknown
or malformed parameter is a 400 `invalid_request_error` whose `param` names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from stripe_sandbox.errors import invalid_request, missing_parameter, unknown_parameter

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"^-?\d+$")

#: Limits Stripe documents for metadata.
METADATA_MAX_KEYS = 50
METADATA_KEY_LENGTH = 40
METADATA_VALUE_LENGTH = 500


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nested dicts of strings; `a[]=x&a[]=y` gets indexes 0, 1 (lists are made by the schema)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise invalid_request(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node = root
        for depth, segment in enumerate(path):
            if segment == "":
                segment = str(len(node))
            name = _param_name(path[: depth + 1])
            if depth == len(path) - 1:
                if isinstance(node.get(segment), dict):
                    raise invalid_request(
                        f"Invalid hash: {name} is both a value and a hash", param=name
                    )
                node[segment] = value
            else:
                child = node.setdefault(segment, {})
                if not isinstance(child, dict):
                    raise invalid_request(
                        f"Invalid hash: {name} is both a value and a hash", param=name
                    )
                node = child
    return root


def _param_name(path: list[str]) -> str:
    return path[0] + "".join(f"[{segment}]" for segment in path[1:])


def child_name(parent: str, key: str | int) -> str:
    return f"{parent}[{key}]" if parent else str(key)


class Spec(Protocol):
    def parse(self, value: Any, param: str) -> Any: ...


def _expect_text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_request(f"Invalid string: {param} must be a string, not a hash", param=param)
    if value == "":
        raise invalid_request(
            f"You passed an empty string for '{param}'. We assume empty values are an attempt to "
            f"unset a parameter; however '{param}' cannot be unset. You should remove '{param}' "
            "from your request or supply a non-empty value.",
            param=param,
            code="parameter_invalid_empty",
        )
    return value


@dataclass(frozen=True)
class String:
    max_length: int = 5000

    def parse(self, value: Any, param: str) -> str:
        text = _expect_text(value, param)
        if len(text) > self.max_length:
            raise invalid_request(
                f"Invalid string: {text[:20]}...; must be at most {self.max_length} characters",
                param=param,
                code="parameter_invalid_string_too_long",
            )
        return text


@dataclass(frozen=True)
class Integer:
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, value: Any, param: str) -> int:
        text = _expect_text(value, param)
        if not _INTEGER.match(text):
            raise invalid_request(
                f"Invalid integer: {text}", param=param, code="parameter_invalid_integer"
            )
        number = int(text)
        if self.minimum is not None and number < self.minimum:
            raise invalid_request(
                f"This value must be greater than or equal to {self.minimum}.", param=param
            )
        if self.maximum is not None and number > self.maximum:
            raise invalid_request(
                f"This value must be less than or equal to {self.maximum}.", param=param
            )
        return number


@dataclass(frozen=True)
class Boolean:
    def parse(self, value: Any, param: str) -> bool:
        text = _expect_text(value, param)
        if text not in ("true", "false"):
            raise invalid_request(f"Invalid boolean: {text}", param=param)
        return text == "true"


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]

    def __init__(self, *values: str) -> None:
        object.__setattr__(self, "values", values)

    def parse(self, value: Any, param: str) -> str:
        text = _expect_text(value, param)
        if text not in self.values:
            name = param.rsplit("[", 1)[-1].rstrip("]")
            choices = (
                ", ".join(self.values[:-1]) + f", or {self.values[-1]}"
                if len(self.values) > 1
                else self.values[0]
            )
            raise invalid_request(f"Invalid {name}: must be one of {choices}", param=param)
        return text


@dataclass(frozen=True)
class Currency:
    """Three-letter ISO code; Stripe answers in lowercase whatever case it was sent in."""

    supported: frozenset[str]

    def parse(self, value: Any, param: str) -> str:
        text = _expect_text(value, param).lower()
        if text not in self.supported:
            raise invalid_request(
                f"Invalid currency: {text}. The dealflow sandbox supports: "
                + ", ".join(sorted(self.supported)),
                param=param,
            )
        return text


@dataclass(frozen=True)
class Metadata:
    """Keys to string values; an empty value means "not set", as in Stripe."""

    def parse(self, value: Any, param: str) -> dict[str, str]:
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid_request("Invalid hash", param=param)
        if len(value) > METADATA_MAX_KEYS:
            raise invalid_request(
                f"You can specify up to {METADATA_MAX_KEYS} keys in metadata.", param=param
            )
        result = {}
        for key, item in value.items():
            name = child_name(param, key)
            if not isinstance(item, str):
                raise invalid_request("Invalid metadata: values must be strings", param=name)
            if len(key) > METADATA_KEY_LENGTH:
                raise invalid_request(
                    f"Metadata keys can have a maximum length of {METADATA_KEY_LENGTH} characters.",
                    param=name,
                )
            if len(item) > METADATA_VALUE_LENGTH:
                raise invalid_request(
                    f"Metadata values can have a maximum length of {METADATA_VALUE_LENGTH} characters.",
                    param=name,
                )
            if item:
                result[key] = item
        return result


@dataclass(frozen=True)
class Array:
    item: Spec
    max_items: int = 100

    def parse(self, value: Any, param: str) -> list[Any]:
        if not isinstance(value, dict) or not all(_INTEGER.match(key) for key in value):
            raise invalid_request("Invalid array", param=param)
        if len(value) > self.max_items:
            raise invalid_request(f"Invalid array: at most {self.max_items} items", param=param)
        indexes = sorted(value, key=int)
        return [self.item.parse(value[index], child_name(param, index)) for index in indexes]


@dataclass(frozen=True)
class Field:
    spec: Spec
    required: bool = False


def required(spec: Spec) -> Field:
    return Field(spec, required=True)


@dataclass(frozen=True)
class Hash:
    fields: Mapping[str, Spec | Field] = field(default_factory=dict)

    def parse(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid_request("Invalid hash", param=param or None)
        for key in value:
            if key not in self.fields:
                raise unknown_parameter(child_name(param, key))
        result = {}
        for key, declared in self.fields.items():
            entry = declared if isinstance(declared, Field) else Field(declared)
            name = child_name(param, key)
            if key not in value:
                if entry.required:
                    raise missing_parameter(name)
                continue
            result[key] = entry.spec.parse(value[key], name)
        return result


@dataclass(frozen=True)
class TimestampRange:
    """`created=123` or `created[gte]=123`: Stripe's list filter on a timestamp."""

    def parse(self, value: Any, param: str) -> dict[str, int]:
        if isinstance(value, str):
            return {"eq": Integer().parse(value, param)}
        bounds = Hash({op: Integer() for op in ("gt", "gte", "lt", "lte")}).parse(value, param)
        return bounds


def validate(schema: Hash, params: dict[str, Any]) -> dict[str, Any]:
    """Validate decoded params against an endpoint's schema; raises StripeError naming the param."""
    return schema.parse(params, "")


EXPAND = Array(String(max_length=200), max_items=20)
LIST_PAGE = {
    "limit": Integer(minimum=1, maximum=100),
    "starting_after": String(),
    "ending_before": String(),
    "expand": EXPAND,
}
