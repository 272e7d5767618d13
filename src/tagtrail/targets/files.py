"""The deploy files as the GitOps target sees them: each app's references, what runs by them, and the
rewrite of a set of them (byte-preserving, verified by tagtrail.adapters.refs)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from tagtrail.adapters.refs import Image, Matcher, Reference, find, rewrite_found
from tagtrail.domain.policy import Running
from tagtrail.domain.scheme import ParsedTag, Scheme
from tagtrail.targets.base import AppState

Found = Mapping[str, Sequence[Reference]]  # path → the references in its text, as `find` returns them


def read_state(files: Mapping[str, str | None], matcher: Matcher, scheme: Scheme) -> dict[str, AppState]:
    """Each app's references in the deploy files. Where references disagree, the newest readable build is
    what runs (so a hand-made newer reference is never taken for older)."""
    return states_of(find_all(files, matcher), scheme)


def find_all(files: Mapping[str, str | None], matcher: Matcher) -> dict[str, list[Reference]]:
    """The references in each file that is there, in the order of `files`."""
    return {path: find(path, text, matcher) for path, text in files.items() if text is not None}


def states_of(found: Found, scheme: Scheme, apps: Collection[str] | None = None) -> dict[str, AppState]:
    """Each app's state from the references found (only those of `apps`, when given), file by file."""
    by_app: dict[str, list[Reference]] = {}
    for refs in found.values():
        for ref in refs:
            if apps is None or ref.app in apps:
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
    texts: Mapping[str, str | None], images: Mapping[str, Image], matcher: Matcher, found: Found
) -> tuple[dict[str, str], set[str], dict[str, list[Reference]]]:
    """The files whose text changes (path → new text), the apps whose references changed, and the
    references of each new text. `found`: the references of `texts` as read; a file holding none of the
    apps in `images` is left alone, unparsed."""
    edits: dict[str, str] = {}
    changed: set[str] = set()
    after: dict[str, list[Reference]] = {}
    for path, text in texts.items():
        before = list(found.get(path, ()))
        if text is None or not any(r.app in images for r in before):
            continue
        new, refs, after[path] = rewrite_found(path, text, matcher, images, before)
        if new != text:
            edits[path] = new
            changed.update(r.app for r in refs)
    return edits, changed, after
