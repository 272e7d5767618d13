"""References split across the keys of one mapping: Helm values (`repository`/`name`/`image` + `tag`/`version`
[+ `digest`], with or without `registry`), kustomization `images:` entries (`name`/`newName` + `newTag` +
`digest`), and the key paths tagtrail.yaml declares per app (`deploy.apps.<app>.helm`).

A shape tagtrail cannot read one way only (two repository keys naming images, two different tag keys, a
placeholder for a tag) is refused, never guessed at: a wrong guess deploys an image that cannot be pulled.
"""

from __future__ import annotations

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from tagtrail.adapters.refs._model import Kind, Reference
from tagtrail.adapters.refs._scan import Scan, is_text, pairs
from tagtrail.adapters.registry.reference import ImageRef
from tagtrail.domain.scheme import is_valid_tag
from tagtrail.errors import InvalidReference

REPOSITORY_KEYS = ("repository", "image", "name")
TAG_KEYS = ("tag", "version")
_KUSTOMIZE_KEYS = frozenset({"newTag", "digest", "newName"})


def split(scan: Scan, node: MappingNode) -> Reference | None:
    keyed = pairs(node)
    return _helm(scan, node, keyed) or _kustomize(scan, node, keyed)


def _scalar(keyed: dict[str, Node], key: str) -> ScalarNode | None:
    node = keyed.get(key)
    return node if isinstance(node, ScalarNode) and is_text(node) else None


def _distinct(found: list[ScalarNode | None]) -> list[ScalarNode]:
    unique: dict[int, ScalarNode] = {}
    for node in found:
        if node is not None:
            unique.setdefault(id(node), node)
    return list(unique.values())


def repository(text: str) -> ImageRef | None:
    """A repository as a split form writes it: one component is enough there (`nginx`, `myapp`)."""
    if not text or any(c.isspace() for c in text):
        return None
    try:
        ref = ImageRef.parse(text)
    except InvalidReference:
        return None
    return ref if ref.tag is None and ref.digest is None else None


def _helm(scan: Scan, node: MappingNode, keyed: dict[str, Node]) -> Reference | None:
    tags = _distinct([_scalar(keyed, key) for key in TAG_KEYS])
    if not tags:
        return None
    registry = _scalar(keyed, "registry")
    named: list[tuple[str, ScalarNode, ImageRef, str]] = []
    for key in REPOSITORY_KEYS:
        value = _scalar(keyed, key)
        if value is None or any(value is n for _, n, _, _ in named):
            continue
        if "://" in str(value.value):
            return None  # a chart dependency (name, version, repository URL), not an image
        ref = repository(f"{registry.value}/{value.value}" if registry is not None else str(value.value))
        app = scan.matcher.app_of(ref.name) if ref is not None else None
        if ref is not None and app is not None:
            named.append((key, value, ref, app))
    if not named:
        return None
    if len(named) > 1:
        first, second = named[0][0], named[1][0]
        scan.refuse(
            node,
            f"`{first}:` and `{second}:` both name a managed image beside a tag; tagtrail cannot tell which one"
            f" the chart renders: keep one, or declare the keys in tagtrail.yaml (deploy.apps.{named[0][3]}.helm)",
        )
    key, value, ref, app = named[0]
    if len(tags) > 1:
        scan.refuse(
            node,
            f"`tag:` and `version:` both sit beside `{key}: {value.value}`; tagtrail cannot tell which one the"
            f" chart reads: keep one, or declare it in tagtrail.yaml (deploy.apps.{app}.helm)",
        )
    roles = {"repository": value, "tag": tags[0], "digest": _scalar(keyed, "digest")}
    return _reference(scan, node, app, "helm", ref.name, roles)


def _kustomize(scan: Scan, node: MappingNode, keyed: dict[str, Node]) -> Reference | None:
    name = _scalar(keyed, "name")
    if name is None or not (_KUSTOMIZE_KEYS & keyed.keys()):
        return None
    new_name, new_tag, digest = _scalar(keyed, "newName"), _scalar(keyed, "newTag"), _scalar(keyed, "digest")
    shown = repository(str((new_name if new_name is not None else name).value))
    app = scan.matcher.app_of(shown.name) if shown is not None else None
    if shown is None or app is None:
        return None
    insert_at, indent = None, ""
    if (new_tag is None or digest is None) and not node.flow_style:
        last = max((value for _, value in node.value), key=lambda v: v.end_mark.index)
        line_end = scan.text.find("\n", last.end_mark.index + scan.offset)
        insert_at = len(scan.text) if line_end < 0 else line_end + 1
        indent = " " * node.value[0][0].start_mark.column
    roles = {"name": name, "newName": new_name, "newTag": new_tag, "digest": digest}
    return _reference(scan, node, app, "kustomize", shown.name, roles, insert_at, indent)


def configured(scan: Scan, root: Node) -> list[Reference]:
    """The references tagtrail.yaml places by key path. A repository key that names another image means the
    keys are another chart's: the file is not this app's values."""
    found = []
    for app, declared in scan.matcher.helm.items():
        for keys in declared:
            value = _at(scan, root, keys.repository, app)
            ref = repository(str(value.value)) if value is not None else None
            if value is None or ref is None or scan.matcher.app_of(ref.name) != app:
                continue
            roles: dict[str, ScalarNode | None] = {"repository": value}
            for role, path in (("tag", keys.tag), ("digest", keys.digest)):
                if path is None:
                    continue
                roles[role] = _at(scan, root, path, app)
                if roles[role] is None:
                    scan.refuse(
                        value,
                        f"deploy.apps.{app}.helm puts the {role} at `{path}`, and this file has no such key beside"
                        f" `{keys.repository}`; add the key, or correct the path in tagtrail.yaml",
                    )
            found.append(_reference(scan, value, app, "helm", ref.name, roles))
    return found


def _at(scan: Scan, root: Node, path: str, app: str) -> ScalarNode | None:
    found = _distinct(list(_resolve(root, path)))
    if len(found) > 1:
        scan.refuse(
            found[0],
            f"`{path}` (deploy.apps.{app}.helm) is both a dotted key and a nested one in this file;"
            " rename one of them so the path names one value",
        )
    return found[0] if found else None


def _resolve(node: Node, path: str) -> list[ScalarNode | None]:
    """Every node a dotted key path reaches: `a.b.c` may be keys `a` → `b` → `c`, or `a.b` → `c`, or…"""
    if not isinstance(node, MappingNode):
        return []
    keyed = pairs(node)
    leaf = keyed.get(path)
    found: list[ScalarNode | None] = [leaf] if isinstance(leaf, ScalarNode) and is_text(leaf) else []
    parts = path.split(".")
    for cut in range(1, len(parts)):
        head = ".".join(parts[:cut])
        if head in keyed:
            found += _resolve(keyed[head], ".".join(parts[cut:]))
    return found


def _reference(
    scan: Scan,
    node: Node,
    app: str,
    kind: Kind,
    name: str,
    roles: dict[str, ScalarNode | None],
    insert_at: int | None = None,
    indent: str = "",
) -> Reference:
    present = {role: scalar for role, scalar in roles.items() if scalar is not None}
    scan.used.update(id(scalar) for scalar in present.values())
    spans = {role: scan.span(scalar) for role, scalar in present.items()}
    tag_role = "tag" if kind == "helm" else "newTag"
    tag, _, inline_digest = spans[tag_role].value.partition("@") if tag_role in spans else ("", "", "")
    if tag and not is_valid_tag(tag):
        scan.refuse(
            present[tag_role],
            f"the tag of {app} reads '{tag}', which is not an image tag (a placeholder?); write the tag that"
            " runs now, tagtrail then keeps it current",
        )
    digest = spans["digest"].value if "digest" in spans and spans["digest"].value else inline_digest
    return Reference(
        scan.path, app, kind, scan.line(node), name, tag or None, digest or None, spans, insert_at, indent
    )
