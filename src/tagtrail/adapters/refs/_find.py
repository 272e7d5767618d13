"""Locate: every reference to a managed image in one YAML file, each node counted once."""

from __future__ import annotations

import functools
import re
from dataclasses import replace

from ruamel.yaml.nodes import ScalarNode

from tagtrail.adapters.refs._model import Matcher, Reference, normalise, split_written
from tagtrail.adapters.refs._scan import Scan, is_text, nodes
from tagtrail.adapters.refs._split import configured, split
from tagtrail.adapters.registry.reference import ImageRef
from tagtrail.domain.scheme import is_valid_tag
from tagtrail.errors import InvalidReference

_PARTS = ("tag", "name", "digest")
_SPACE = re.compile(r"\s")  # what str.isspace says is space, found in C: a file holds thousands of scalars
# A push's proof reads the whole file again, every reference but the one edited as it was: each read once.
_parse = functools.lru_cache(maxsize=16384)(ImageRef.parse)


def find(path: str, text: str, matcher: Matcher, *, shaped: bool = False) -> list[Reference]:
    """Every reference to a managed image in one YAML file (all its documents). An aliased node is one
    reference however many aliases name it: it is one value in the file. `shaped`: the text is an edit of
    value tokens only of one read before, so its nesting and aliases are not walked again (`_scan.compose`)."""
    scan = Scan.of(path, text, matcher, shaped=shaped)
    found: list[Reference] = []
    for document in scan.documents():
        mappings, scalars = nodes(document)
        found += configured(scan, document)
        marked = {key: policy for key, (node, _) in scalars.items() if (policy := scan.marker(node))}
        for mapping in mappings:
            values = [value for _, value in mapping.value]
            if any(id(v) in scan.used for v in values):
                continue  # tagtrail.yaml's key paths said what its scalars are
            ref = split(scan, mapping)
            # A marker says what its scalar is, whatever the mapping's shape. The shape still claims the
            # unmarked ones, so a kustomize `name:` beside a marked `newTag:` is not an image of its own.
            if ref is not None and not any(id(v) in marked for v in values):
                found.append(ref)
        for key, (node, keys) in scalars.items():
            policy = marked.get(key)
            if policy is not None:
                ref = _marked(scan, node, policy)
            elif key in scan.used or not is_text(node):
                continue
            else:
                ref = _scalar(scan, node, "image" in keys)
            if ref is not None:
                found.append(ref)
    return sorted(_with_marked_digests(found), key=lambda r: r.line)


def _with_marked_digests(found: list[Reference]) -> list[Reference]:
    """A Flux `:tag` field and its `:digest` field are one image: the tag's reference carries the digest the
    file pins beside it, so what runs reads as tag@digest (when the file names one digest for the app)."""
    digests: dict[str, set[str | None]] = {}
    for ref in found:
        if ref.kind == "digest":
            digests.setdefault(ref.app, set()).add(ref.digest)
    return [
        replace(ref, digest=next(iter(digests[ref.app])))
        if ref.kind == "tag" and ref.digest is None and len(digests.get(ref.app, ())) == 1
        else ref
        for ref in found
    ]


def _scalar(scan: Scan, node: ScalarNode, under_image_key: bool) -> Reference | None:
    """A scalar holding a whole reference. Anywhere, a value with a registry or path (`/`) or a tag (`:`);
    under an `image:` key, a bare Docker Hub name too (`nginx`, `redis`)."""
    value = str(node.value)
    if not value or _SPACE.search(value):
        return None
    if not under_image_key and "/" not in value and ":" not in value:
        return None
    try:
        ref = _parse(value)
    except InvalidReference as exc:
        _refuse_if_managed(scan, node, value, under_image_key, exc)
        return None
    app = scan.matcher.app_of(ref.name)
    if app is None:
        return None
    return Reference(
        scan.path, app, "image", scan.line(node), ref.name, ref.tag, ref.digest, {"image": scan.span(node)}
    )


def _refuse_if_managed(
    scan: Scan, node: ScalarNode, value: str, under_image_key: bool, exc: InvalidReference
) -> None:
    """A managed image with a placeholder for a tag (`…/web:{GENERATED_TAG}`) or a broken digest is not left
    alone in silence: it is refused, so the user learns that tagtrail cannot keep it current."""
    written, _, _ = split_written(value)
    try:
        app = scan.matcher.app_of(normalise(written))
    except InvalidReference:
        return
    if app is not None and (under_image_key or "/" in written):
        scan.refuse(
            node,
            f"the image of {app} reads '{value}', which is not an image reference ({_reason(exc)}); write the"
            " tag (or tag@digest) that runs now, tagtrail then keeps it current",
        )


def _reason(exc: InvalidReference) -> str:
    message = str(exc)
    return message.split(": ", 1)[1] if message.startswith("'") and ": " in message else message


def _marked(scan: Scan, node: ScalarNode, policy: str) -> Reference | None:
    """A scalar a Flux marker names: `ns:policy` is a whole reference, `ns:policy:tag|name|digest` one part
    of it. A policy of another namespace belongs to another automation, and is left alone."""
    parts = policy.split(":")
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and parts[2] not in _PARTS):
        scan.refuse(
            node,
            f"the $imagepolicy marker '{policy}' is not namespace:policy, or namespace:policy:tag|name|digest;"
            " correct the marker",
        )
    namespace, app = parts[0], parts[1]
    if namespace not in scan.matcher.namespaces:
        return None
    part = parts[2] if len(parts) == 3 else "image"
    span = scan.span(node)
    value, line = span.value, scan.line(node)
    if part == "tag":
        tag, _, digest = value.partition("@")
        if tag and not is_valid_tag(tag):
            scan.refuse(
                node,
                f"the tag of {app} reads '{tag}', which is not an image tag; write the tag that runs now",
            )
        return Reference(scan.path, app, "tag", line, None, tag or None, digest or None, {"tag": span})
    if part == "digest":
        return Reference(scan.path, app, "digest", line, None, None, value or None, {"digest": span})
    try:
        ref = ImageRef.parse(value)
    except InvalidReference as exc:
        scan.refuse(
            node,
            f"the {part} of {app} (marked by $imagepolicy) reads '{value}', which is not an image"
            f" {'repository' if part == 'name' else 'reference'} ({_reason(exc)}); write the one that runs now",
        )
    if part == "name":
        return Reference(scan.path, app, "name", line, ref.name, None, None, {"name": span})
    return Reference(scan.path, app, "image", line, ref.name, ref.tag, ref.digest, {"image": span})
