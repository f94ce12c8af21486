"""Two versions of a deal's terms side by side, as the portal shows a change order: each
milestone's terms before and after, and whether they differ."""

from __future__ import annotations

from dataclasses import dataclass

from dealflow.messages import DealStatus, SowVersion
from dealflow.models import Milestone


@dataclass(frozen=True)
class TermsRow:
    key: str
    before: Milestone | None
    after: Milestone | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def side_by_side(before: SowVersion, after: SowVersion) -> list[TermsRow]:
    """Every milestone of either version: the new order first, removed ones after."""
    old = {m.key: m for m in before.milestones}
    new = {m.key: m for m in after.milestones}
    keys = [*new, *(key for key in old if key not in new)]
    return [TermsRow(key, old.get(key), new.get(key)) for key in keys]


@dataclass(frozen=True)
class VersionsView:
    """What the portal shows of a deal's versions: the one in force, the proposal awaiting an
    answer (if any), and the one the page was asked for (`?version=N`, else the one in force)."""

    current: SowVersion | None
    proposed: SowVersion | None
    viewed: SowVersion | None

    @classmethod
    def of(cls, status: DealStatus, asked: int | None) -> VersionsView:
        by_number = {v.number: v for v in status.sow_versions}
        current = by_number.get(status.sow_version)
        proposed = next((v for v in status.sow_versions if v.state == "proposed"), None)
        return cls(current, proposed, by_number.get(asked) if asked else current)
