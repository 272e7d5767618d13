"""Workloads as tagtrail reads them: which containers of a Deployment, StatefulSet, DaemonSet or CronJob run
an app's image (init containers too, under any alias the config names), and the JSON patch that changes
them only if they still say what was read (a `test` of each image before its `replace`, and of each pin).

Pure: objects come in as the API server's JSON (dicts) and go out as dataclasses and patch operations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tagtrail.adapters.refs import Image, Matcher, normalise, split_written
from tagtrail.errors import InvalidReference

# kind → (API group, plural, path from the object to its Pod spec)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Deployment": ("apps", "deployments", ("spec", "template", "spec")),
    "StatefulSet": ("apps", "statefulsets", ("spec", "template", "spec")),
    "DaemonSet": ("apps", "daemonsets", ("spec", "template", "spec")),
    "CronJob": ("batch", "cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")),
}
PREFIX = "tagtrail.dev/"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def annotation(field: str, app: str) -> str:
    """The annotation that holds `field` (tag, commit, reason, pin, by) for `app` on a workload."""
    return f"{PREFIX}{field}.{app}"


@dataclass(frozen=True)
class Container:
    """One container (or init container) of a workload that runs an app's image."""

    app: str
    name: str
    image: str  # as written in the spec
    init: bool
    pointer: str  # JSON pointer of its `image` field

    @property
    def tag(self) -> str | None:
        return split_written(self.image)[1]

    @property
    def digest(self) -> str | None:
        return split_written(self.image)[2]

    def retarget(self, image: Image) -> str:
        """This container's image set to `image`'s tag and digest, its repository kept as written (the name
        the nodes pull by, which may be an alias)."""
        return f"{split_written(self.image)[0]}:{image.tag}@{image.digest}"


@dataclass(frozen=True)
class Workload:
    """A workload with at least one container of a managed app."""

    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    annotations: Mapping[str, str]
    containers: tuple[Container, ...]
    selector: Mapping[str, Any]
    body: Mapping[str, Any]  # the object as read (status, spec), for rollout progress

    @property
    def ref(self) -> str:
        """namespace/kind/name, the way tagtrail names a workload in messages."""
        return f"{self.namespace}/{self.kind.lower()}/{self.name}"

    def of(self, app: str) -> tuple[Container, ...]:
        return tuple(c for c in self.containers if c.app == app)

    @property
    def apps(self) -> list[str]:
        return sorted({c.app for c in self.containers})

    def pin(self, app: str) -> str | None:
        return self.annotations.get(annotation("pin", app))


def read(kind: str, body: Mapping[str, Any], matcher: Matcher) -> Workload | None:
    """The workload `body` is, if any of its containers runs a managed app's image."""
    meta = body.get("metadata") or {}
    spec: Any = body
    for key in KINDS[kind][2]:
        spec = (spec or {}).get(key)
    containers = []
    base = "/" + "/".join(KINDS[kind][2])
    for init, field in ((True, "initContainers"), (False, "containers")):
        for index, container in enumerate((spec or {}).get(field) or []):
            image = container.get("image") or ""
            app = app_of(image, matcher)
            if app is not None:
                pointer = f"{base}/{field}/{index}/image"
                containers.append(Container(app, container.get("name", ""), image, init, pointer))
    if not containers:
        return None
    return Workload(
        kind,
        meta.get("namespace", ""),
        meta.get("name", ""),
        meta.get("uid", ""),
        int(meta.get("generation") or 0),
        meta.get("resourceVersion", ""),
        dict(meta.get("annotations") or {}),
        tuple(containers),
        ((body.get("spec") or {}).get("selector") or {}),
        body,
    )


def app_of(image: str, matcher: Matcher) -> str | None:
    """The app whose image `image` names (by the image template or an alias), or None."""
    try:
        return matcher.app_of(normalise(split_written(image)[0]))
    except InvalidReference:
        return None


def patch(
    workload: Workload, images: Mapping[str, Image], notes: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """The JSON patch that sets each app's containers to its image and the annotations in `notes` (None
    removes one), refused by the API server as a whole if an image or a pin changed since it was read."""
    ops: list[dict[str, Any]] = []
    for container in workload.containers:
        image = images.get(container.app)
        if image is not None:
            ops += swap(container, container.retarget(image))
    return guarded(workload, ops, notes)


def guarded(
    workload: Workload, ops: list[dict[str, Any]], notes: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """`ops` and the annotations in `notes` (`annotate`), preceded by a `test` of each pin of the
    workload's apps as read (null: absent), so a pin that a person sets, changes or removes meanwhile wins
    over a decision made without it. With no annotations at all read, the `test` is of the map itself: one
    created meanwhile fails the patch, never replaced."""
    ops = ops + annotate(workload.annotations, notes)
    if not ops:
        return []
    if not workload.annotations:
        return [{"op": "test", "path": "/metadata/annotations", "value": None}, *ops]
    pins = [annotation("pin", app) for app in workload.apps]
    return [{"op": "test", "path": _key(pin), "value": workload.annotations.get(pin)} for pin in pins] + ops


def swap(container: Container, image: str) -> list[dict[str, Any]]:
    """Set a container's image only if it still says what was read (none when it already says `image`)."""
    if container.image == image:
        return []
    return [
        {"op": "test", "path": container.pointer, "value": container.image},
        {"op": "replace", "path": container.pointer, "value": image},
    ]


def annotate(current: Mapping[str, str], notes: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Operations that set (or, for None, remove) annotations key by key; where the object had none when
    read, they first make the empty map, which only `guarded` makes safe (the map is tested absent)."""
    setting = {k: v for k, v in notes.items() if v is not None}
    removing = [k for k, v in notes.items() if v is None and k in current]
    ops: list[dict[str, Any]] = []
    if not current and setting:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    ops += [{"op": "add", "path": _key(k), "value": v} for k, v in setting.items()]
    ops += [{"op": "remove", "path": _key(k)} for k in removing]
    return ops


def _key(annotation_key: str) -> str:
    return f"/metadata/annotations/{_escape(annotation_key)}"


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy a LabelSelector (matchLabels and matchExpressions)."""
    if not selector:
        return False  # an empty selector selects nothing here: a workload's Pods always have labels
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression(e, labels) for e in selector.get("matchExpressions") or [])


def _expression(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values: Sequence[str] = expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False
