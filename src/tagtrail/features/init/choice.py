"""The one record of init's reasoning: a value it chose and the sentence saying why, shown in the
summary and written as a comment beside the value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    value: str
    why: str
