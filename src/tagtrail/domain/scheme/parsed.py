"""What reading a tag gives: a ParsedTag, or a Rejected that says why the tag is not of the scheme."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RejectCode = Literal["other-scheme", "other-branch", "dirty", "invalid-time", "nonexistent-time"]


@dataclass(frozen=True)
class ParsedTag:
    """A tag of the scheme: the branch as it appears in the tag, the short sha, and when it was made.

    `instants` is empty for a scheme without a date, holds one UTC instant normally, and two (earlier first)
    when the local time written in the tag fell in a DST overlap.
    """

    tag: str
    branch: str
    sha: str
    instants: tuple[datetime, ...]

    @property
    def time(self) -> datetime | None:
        """The one instant the tag names; None when the scheme has no date or the time is ambiguous."""
        return self.instants[0] if len(self.instants) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.instants) > 1


@dataclass(frozen=True)
class Rejected:
    """A tag that is not of the scheme, with a stable code and a sentence a person can act on."""

    tag: str
    code: RejectCode
    reason: str
