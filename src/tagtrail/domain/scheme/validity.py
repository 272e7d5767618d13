"""What a registry accepts as a tag, and what metadata-action makes of text that is not one.

The OCI distribution spec's tag grammar: a letter, digit or `_`, then up to 127 of those, `.` and `-`.
A registry's tag list is checked against it once, in one regex pass; the list is then `CheckedTags`, so
ranking does not check it again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_TAG_LENGTH = 128
_INVALID_RUN = re.compile(r"[^a-zA-Z0-9._-]+")
_VALID_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_VALID_LINES = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:\n[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})*")


def sanitize_tag(text: str) -> str:
    """What metadata-action does to a tag: each run of characters a tag cannot hold becomes one `-`."""
    return _INVALID_RUN.sub("-", text)


def is_valid_tag(text: str) -> bool:
    """Whether a registry accepts `text` as a tag (the OCI distribution spec's tag grammar)."""
    return _VALID_TAG.fullmatch(text) is not None


class CheckedTags(list[str]):
    """Tags that `first_invalid_tag` has found valid (the registry client returns these), so ranking need
    not check them again. Not to be changed after it is made."""


def first_invalid_tag(tags: Sequence[object]) -> object | None:
    """The first item of `tags` that is not a valid tag (or not a string), or None; one join and one regex
    pass for the usual case, where all are fine."""
    try:
        joined = "\n".join(tags)  # type: ignore[arg-type]  # a non-string raises TypeError: the slow path finds it
    except TypeError:
        joined = ""
    if not tags or (_VALID_LINES.fullmatch(joined) and joined.count("\n") == len(tags) - 1):
        return None
    return next(t for t in tags if not isinstance(t, str) or not is_valid_tag(t))
