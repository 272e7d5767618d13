"""Prove: read the rewritten file back before a byte is written (DESIGN invariant 5)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from tagtrail.adapters.refs._find import find
from tagtrail.adapters.refs._model import Image, Matcher, Reference
from tagtrail.errors import RefsError


def verify(
    path: str,
    text: str,
    matcher: Matcher,
    targets: Mapping[str, Image],
    before: list[Reference],
    *,
    shaped: bool = False,
) -> list[Reference]:
    """Every reference of the apps edited must now name its target, and each app must have exactly as many
    references as before: an edit that made one unreadable, or made a new one, is a broken edit. Returns the
    references of `text` as read back. `shaped`: the edit replaced value tokens only (`find`)."""
    try:
        after = find(path, text, matcher, shaped=shaped)
    except RefsError as exc:
        raise RefsError(
            f"{path}: the rewritten file does not read back ({str(exc).removesuffix('; nothing was written')});"
            " nothing was written; this is a tagtrail"
            " bug, please report it with the file"
        ) from None
    counted_before, counted_after = Counter(r.app for r in before), Counter(r.app for r in after)
    for app in sorted(counted_before.keys() | counted_after.keys()):
        if counted_before[app] != counted_after[app]:
            line = next(r.line for r in (*before, *after) if r.app == app)
            raise RefsError(
                f"{path}:{line}: {app} has {counted_before[app]} references before the edit and"
                f" {counted_after[app]} after; nothing was written; this is a tagtrail bug, please report it"
                " with the file"
            )
    digest_marked = {r.app for r in after if r.kind == "digest"}
    for ref in after:
        target = targets.get(ref.app)
        if target is not None and not _reads_as(ref, target, matcher, digest_marked):
            raise RefsError(
                f"{path}:{ref.line}: the rewritten reference of {ref.app} does not read back as"
                f" {target.reference}; nothing was written; this is a tagtrail bug, please report it with the file"
            )
    return after


def _reads_as(ref: Reference, target: Image, matcher: Matcher, digest_marked: set[str]) -> bool:
    if ref.kind == "digest":
        return ref.digest == target.digest
    if ref.kind == "name":
        return ref.name is not None and matcher.names(ref.name, ref.app, target)
    if ref.kind == "tag":
        pinned = ref.digest == target.digest or (ref.digest is None and ref.app in digest_marked)
        return ref.tag == target.tag and pinned
    named = ref.kind != "image" or (ref.name is not None and matcher.names(ref.name, ref.app, target))
    return named and ref.tag == target.tag and ref.digest == target.digest
