"""A Deployment's ReplicaSets as its rollout revisions (what `kubectl rollout undo --to-revision` can go
back to): their number, when, the images of an app they hold, and the annotations they carry; and the
images a StatefulSet's or DaemonSet's ControllerRevisions hold, for retention.

Annotations are anyone's to edit: a `deployment.kubernetes.io/revision` that is not a number, or a
`tagtrail.dev/at.APP` that is not a time, makes that ReplicaSet skipped with a warning naming it, never an
error that stops `history` or `prune`. Retention reads the images of every owned ReplicaSet (`containers`)
whatever its annotations say: a ReplicaSet skipped here is still a rollback target. Pure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from tagtrail.adapters.kube.workloads import Container, annotation, read
from tagtrail.adapters.refs import Matcher

log = logging.getLogger("tagtrail.kube")
REVISION = "deployment.kubernetes.io/revision"
M = TypeVar("M", bound=Mapping[str, Any])


@dataclass(frozen=True)
class Revision:
    """One ReplicaSet of a Deployment, for one app."""

    number: int
    when: datetime  # when tagtrail made it current (a rollback reuses an older one), else its creation
    images: tuple[str, ...]  # the app's images in its Pod template, as written
    notes: Mapping[str, str]


def owned(bodies: Iterable[M], uid: str | None) -> list[M]:
    """The ReplicaSets (or ControllerRevisions) that the object of `uid` owns."""
    return [
        body
        for body in bodies
        if any(o.get("uid") == uid for o in (body.get("metadata") or {}).get("ownerReferences") or [])
    ]


def containers(app: str, body: Mapping[str, Any], matcher: Matcher) -> tuple[Container, ...]:
    """The containers of `app` in a ReplicaSet's Pod template, or a ControllerRevision's (its `data` is
    the StatefulSet's or DaemonSet's template as a patch, any JSON the API server does not check: one that
    is not a template cannot be rolled back to, and is skipped with a warning)."""
    data = body.get("data")
    spec = body.get("spec") or (data.get("spec") if isinstance(data, Mapping) else None) or {}
    try:
        found = read("Deployment", {"spec": {"template": spec.get("template")}}, matcher)
    except (AttributeError, TypeError):
        meta = body.get("metadata") or {}
        log.warning("%s/%s skipped: not a Pod template", meta.get("namespace", ""), meta.get("name", ""))
        return ()
    return found.of(app) if found else ()


def revisions(app: str, sets: list[dict[str, Any]], matcher: Matcher) -> list[Revision]:
    """The ReplicaSets that run `app`'s image, oldest revision first; unreadable ones skipped, warned."""
    found = []
    for body in sets:
        held = tuple(c.image for c in containers(app, body, matcher))
        if not held:
            continue
        meta = body.get("metadata") or {}
        notes = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        name = f"{meta.get('namespace', '')}/replicaset/{meta.get('name', '')}"
        number = _number(notes.get(REVISION, "0"))
        if number is None:
            log.warning("%s skipped: its %s is %s, not a number", name, REVISION, _shown(notes[REVISION]))
            continue
        at = annotation("at", app)
        stamp = notes.get(at) or meta.get("creationTimestamp")
        when = _time(stamp)
        if when is None:
            what = at if notes.get(at) else "creationTimestamp"
            log.warning("%s skipped: its %s is %s, not a time", name, what, _shown(stamp))
            continue
        found.append(Revision(number, when, held, notes))
    return sorted(found, key=lambda r: r.number)


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _time(stamp: Any) -> datetime | None:
    if isinstance(stamp, datetime):
        moment = stamp
    else:
        try:
            moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
