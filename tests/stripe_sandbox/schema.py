"""Stripe's object schemas as the `stripe` library declares them, and a check of JSON against them.

The library's resource classes (`stripe.PaymentIntent`, `stripe.checkout.Session`, ...) and their
nested `StripeObject` classes annotate every field Stripe's API description gives the object,
with its type: `Optional[...]` where Stripe may send null, `Literal` values for enums (each
widened with `str` so an old library survives a new value), `ExpandableField` as an id string or
the object, `ListObject[...]` for a list. `problems(json)` walks one answer and names each field
that is missing, undeclared or of another type, so a sandbox that drifts from Stripe fails a test.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ForwardRef, Literal, Union

import stripe
from stripe._list_object import ListObject
from stripe._object_classes import get_object_class
from stripe._stripe_object import StripeObject, UntypedStripeObject

#: Fields the library declares that the sandbox leaves out, each with the reason; keep it small.
NOT_IMPLEMENTED: dict[tuple[str, str], str] = {
    ("Session", "line_items"): "includable: Stripe sends it only with expand[]=line_items",
    ("Charge", "refunds"): "includable: Stripe sends it only with expand[]=refunds",
    ("Customer", "sources"): "includable: only with expand[]=sources (the sandbox has none)",
    ("Customer", "subscriptions"): "includable: only with expand[] (the sandbox has none)",
    ("Customer", "tax_ids"): "includable: only with expand[]=tax_ids (the sandbox has none)",
    ("Customer", "tax"): "includable: only with expand[]=tax (the sandbox computes no tax)",
    ("Customer", "cash_balance"): "includable: only with expand[]=cash_balance (none here)",
    ("Customer", "invoice_credit_balance"): "includable: only with expand[] (no invoices here)",
    ("Customer", "deleted"): "only on a deleted customer's stub, which the check reads apart",
    ("Event", "account"): "only on a connected account's events; the platform's carry none",
    ("Event", "context"): "only on events of an account acting for another (Organizations)",
    ("Account", "deleted"): "only on a deleted account's stub (the sandbox deletes none)",
    ("LineItem", "discounts"): "includable: only with expand[]=line_items.data.discounts",
    ("LineItem", "taxes"): "includable: only with expand[]=line_items.data.taxes",
    ("Price", "currency_options"): "includable: only with expand[]=...currency_options",
    ("Price", "tiers"): "includable: only with expand[]=...tiers (one-time prices have none)",
    ("Price", "deleted"): "only on a deleted price's stub (Checkout's inline prices are not)",
}

#: Resources that carry one nested hash, the one their `type` names, and leave out the rest.
ONE_HASH_PER_TYPE = {"PaymentMethod"}

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_IMPORT = re.compile(r"from (stripe[\w.]*) import\s+\(?\s*(\w+)(?: as (\w+))?")


def object_class(object_name: str) -> type[StripeObject]:
    """The library's class for a JSON object's `object` value (`checkout.session`, ...)."""
    cls = get_object_class("V1", object_name)
    if cls is StripeObject:
        raise LookupError(f"the stripe library has no class for object {object_name!r}")
    return cls


@cache
def declared_fields(cls: type) -> dict[str, Any]:
    """Every field `cls` declares (its own and its bases'), name -> annotation."""
    fields: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        if base in (StripeObject, object) or not issubclass(base, StripeObject):
            continue
        for name, hint in vars(base).get("__annotations__", {}).items():
            if name.startswith("_") or typing.get_origin(hint) is typing.ClassVar:
                continue
            fields[name] = hint
    return fields


def _resolve(ref: ForwardRef, owner: type) -> Any:
    """A forward reference of the library (names imported under TYPE_CHECKING, some as aliases)."""
    name = ref.__forward_arg__
    module = sys.modules[owner.__module__]
    if hasattr(module, name):
        return getattr(module, name)
    source = Path(module.__file__ or "").read_text()
    for path, original, alias in _IMPORT.findall(source):
        if (alias or original) == name:
            return getattr(__import__(path, fromlist=[original]), original)
    top = getattr(stripe, name, None)
    if isinstance(top, type):
        return top
    raise LookupError(f"cannot resolve {name!r} used by {owner.__qualname__}")


def problems(value: Any, cls: type | None = None, path: str = "") -> list[str]:
    """What is wrong with the JSON object `value` as an instance of `cls` (by default the class
    its `object` names): one line per missing, undeclared or mistyped field.

    A resource (a class with its own `object` name) carries every field it declares, null when
    it has no value, as Stripe sends them; a nested hash carries its non-nullable ones (the
    nullable ones of a hash are often absent: `payment_method_details` has only its type's).
    """
    if cls is None:
        cls = object_class(value["object"])
    return list(_object_problems(value, cls, path or value.get("object", "?")))


def _object_problems(value: Any, cls: type, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{path}: expected a {cls.__qualname__} object, got {type(value).__name__}"
        return
    if value.get("deleted") is True and "deleted" in declared_fields(cls):
        # A deleted object reads back as Stripe's stub: id, object and deleted.
        fields = {name: declared_fields(cls)[name] for name in ("id", "object", "deleted")}
    else:
        fields = declared_fields(cls)
    for name in sorted(set(value) - set(fields)):
        yield f"{path}.{name}: not a field of {cls.__qualname__}"
    every_field = hasattr(cls, "OBJECT_NAME")
    for name, hint in fields.items():
        where = f"{path}.{name}"
        if name not in value:
            nullable = type(None) in typing.get_args(hint)
            if cls.__qualname__ in ONE_HASH_PER_TYPE and _is_nested_hash(hint, cls):
                continue
            if (every_field or not nullable) and (cls.__qualname__, name) not in NOT_IMPLEMENTED:
                yield f"{where}: missing ({'nullable' if nullable else 'required'})"
            continue
        yield from _value_problems(value[name], hint, cls, where)


def _value_problems(value: Any, hint: Any, owner: type, path: str) -> Iterator[str]:
    if isinstance(hint, ForwardRef):
        hint = _resolve(hint, owner)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        yield from _union_problems(value, typing.get_args(hint), owner, path)
        return
    if origin is Literal:
        if value not in typing.get_args(hint):
            yield f"{path}: {value!r} is not one of {list(typing.get_args(hint))}"
        return
    if origin in (list, list):
        if not isinstance(value, list):
            yield f"{path}: expected a list, got {value!r}"
            return
        (item,) = typing.get_args(hint)
        for index, element in enumerate(value):
            yield from _value_problems(element, item, owner, f"{path}[{index}]")
        return
    if origin in (dict, dict):
        if not isinstance(value, dict):
            yield f"{path}: expected a hash, got {value!r}"
        return
    if isinstance(origin, type) and issubclass(origin, UntypedStripeObject):
        yield from _hash_problems(value, typing.get_args(hint)[0], owner, path)
        return
    if isinstance(origin, type) and issubclass(origin, ListObject):
        yield from _list_problems(value, typing.get_args(hint)[0], owner, path)
        return
    if hint is Any:
        return
    if isinstance(hint, type) and issubclass(hint, StripeObject):
        yield from _object_problems(value, hint, path)
        return
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            yield f"{path}: expected an integer, got {value!r}"
    elif hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            yield f"{path}: expected a number, got {value!r}"
    elif hint is Decimal:
        if not isinstance(value, str) or not _DECIMAL.match(value):
            yield f"{path}: expected a decimal string, got {value!r}"
    elif hint in (bool, str):
        if not isinstance(value, hint):
            yield f"{path}: expected {hint.__name__}, got {value!r}"
    else:
        raise TypeError(f"{path}: the checker does not know the annotation {hint!r}")


def _is_nested_hash(hint: Any, owner: type) -> bool:
    return any(
        isinstance(option, type)
        and issubclass(option, StripeObject)
        and option.__qualname__.startswith(owner.__qualname__ + ".")
        for option in typing.get_args(hint)
    )


def _union_problems(value: Any, options: tuple[Any, ...], owner: type, path: str) -> Iterator[str]:
    """None where the union allows it; an enum (`Literal[...] | str`) only its listed values; an
    expandable field (`str | Object`) an id string or the object."""
    if value is None:
        if type(None) not in options:
            yield f"{path}: null, but the field is not nullable"
        return
    options = tuple(option for option in options if option is not type(None))
    enums = [option for option in options if typing.get_origin(option) is Literal]
    if enums:
        allowed = [allowed for enum in enums for allowed in typing.get_args(enum)]
        if value not in allowed:
            yield f"{path}: {value!r} is not one of {allowed}"
        return
    if str in options and isinstance(value, str):
        return
    failures = [list(_value_problems(value, option, owner, path)) for option in options]
    if all(failures):
        yield from min(failures, key=len)


def _hash_problems(value: Any, item: Any, owner: type, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{path}: expected a hash, got {value!r}"
        return
    for key, element in value.items():
        yield from _value_problems(element, item, owner, f"{path}.{key}")


def _list_problems(value: Any, item: Any, owner: type, path: str) -> Iterator[str]:
    if not isinstance(value, dict) or value.get("object") != "list":
        yield f"{path}: expected a list object, got {value!r}"
        return
    page = {key: value[key] for key in value if key != "object"}
    fields = {**declared_fields(ListObject), "data": list[item]}
    for name in sorted(set(page) - set(fields)):
        yield f"{path}.{name}: not a field of a list"
    for name, hint in fields.items():
        if name not in page:
            yield f"{path}.{name}: missing (required)"
        else:
            yield from _value_problems(page[name], hint, owner, f"{path}.{name}")
