"""Durations as specs write them (`90s`, `15m`, `36h`, `14d`, `2w`, plain seconds), and the
strict base every spec model shares. Apart from `dealflow.models` so that the deal's terms
(`dealflow.terms`) can use them too."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"^\s*([+-]?)\s*(\d+)\s*([smhdw]?)\s*$")


#: The longest window, interval or offset a deal's terms may name, as for `due_in_days`: a longer
#: one is a typo, and added to a date it could leave the calendar (the deal's first clock would
#: fail its workflow task for good).
LONGEST = timedelta(days=3650)
_TOO_LONG = f"must be at most {LONGEST.days} days (10 years) long"


def _parse_duration(value: object) -> object:
    """Accept `90s`, `15m`, `36h`, `14d`, `2w` (signed: `-7d`, `+2d`) and plain seconds (`0`,
    `"90"`), besides what pydantic accepts."""
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic turns only the former into a validation error.
        raise ValueError("a duration must be a number of seconds or a string like '14d'")  # noqa: TRY004
    if isinstance(value, int | float):
        return _seconds(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            sign = -1 if match.group(1) == "-" else 1
            unit = _DURATION_UNITS[match.group(3) or "s"]
            return _seconds(sign * int(match.group(2)) * unit)
    return value


def _seconds(seconds: float) -> timedelta:
    """The duration, checked against LONGEST before `timedelta` could overflow on it."""
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds")
    if abs(seconds) > LONGEST.total_seconds():
        raise ValueError(_TOO_LONG)
    return timedelta(seconds=seconds)


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return _within_longest(value)


def _within_longest(value: timedelta) -> timedelta:
    if abs(value) > LONGEST:
        raise ValueError(_TOO_LONG)
    return value


_AS_SECONDS = PlainSerializer(lambda d: d.total_seconds(), return_type=float)

#: A window or interval; serialised as seconds so it survives JSON and YAML round trips.
Duration = Annotated[
    timedelta, BeforeValidator(_parse_duration), AfterValidator(_positive_duration), _AS_SECONDS
]
#: A moment relative to another one: `-7d` is a week before, `0` the moment itself.
Offset = Annotated[
    timedelta, BeforeValidator(_parse_duration), AfterValidator(_within_longest), _AS_SECONDS
]


class StrictModel(BaseModel):
    """Unknown fields are errors: a typo in a spec must not silently drop a term of the deal."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def span(duration: timedelta) -> str:
    """A duration for people: '14 days', '36 hours', '30 minutes'."""
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
