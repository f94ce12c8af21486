"""The base of every message: a field nobody declared is refused, never silently dropped."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def from_attributes(cls, source: object, **given: Any) -> Self:
        """The message of an object that names most of its fields the same way (a Stripe object,
        the workflow's own state): `given` fields as given, every other one read from `source`'s
        attribute of that name, so only what differs needs saying."""
        read = {name: getattr(source, name) for name in cls.model_fields if name not in given}
        return cls(**read, **given)
