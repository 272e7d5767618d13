"""The deploy files as the GitOps target sees them: each app's references, what runs by them, and the
rewrite of a set of them (byte-preserving, verified by tagtrail.refs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tagtrail.policy import Running
from tagtrail.refs import Image, Matcher, Reference, find, rewrite
from tagtrail.scheme import ParsedTag, Scheme
from tagtrail.targets.base import AppState


def read_state(files: Mapping[str, str | None], matcher: Matcher, scheme: Scheme) -> dict[str, AppState]:
    """Each app's references in the deploy files. Where references disagree, the newest readable build is
    what runs (so a hand-made newer reference is never taken for older)."""
    by_app: dict[str, list[Reference]] = {}
    for path, text in files.items():
        if text is None:
            continue
        for ref in find(path, text, matcher):
            by_app.setdefault(ref.app, []).append(ref)
    return {app: state_of(app, refs, scheme) for app, refs in sorted(by_app.items())}


def state_of(app: str, refs: Sequence[Reference], scheme: Scheme) -> AppState:
    """An app's state from all its references (in files, or a cluster's containers): where they disagree,
    the newest readable build is what runs, so a newer reference written by hand is never taken for older."""
    readable = [
        (p, r) for r in refs if r.tag and isinstance(p := scheme.parse(r.tag), ParsedTag) and p.instants
    ]
    best = max(readable, key=lambda pr: max(pr[0].instants))[1] if readable else refs[0]
    return AppState(app, tuple(refs), Running(best.tag, best.digest), best.current)


def rewrite_all(
    texts: Mapping[str, str | None], images: Mapping[str, Image], matcher: Matcher
) -> tuple[dict[str, str], set[str]]:
    """The files whose text changes (path → new text), and the apps whose references changed."""
    edits: dict[str, str] = {}
    changed: set[str] = set()
    if not images:
        return edits, changed
    for path, text in texts.items():
        if text is None:
            continue
        new, refs = rewrite(path, text, matcher, images)
        if new != text:
            edits[path] = new
            changed.update(r.app for r in refs)
    return edits, changed
