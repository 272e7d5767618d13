"""Image references in YAML files: found by image repository, rewritten byte for byte.

A reference is any YAML scalar, at any depth and under any key, that names a managed image (the `image:`
template of tagtrail.yaml, or one of `deploy.aliases`), plus the two split forms tools use: Helm values
(`repository:` + `tag:` [+ `digest:`], with or without `registry:`) and kustomization `images:` entries
(`name`/`newName` + `newTag` + `digest`). A Flux-style `# {"$imagepolicy": "ns:name[:tag|:name]"}` marker
makes the scalar before it a reference of app `name` whatever it names.

A rewrite replaces only the text span ruamel.yaml reports for each scalar (quotes kept as they were), or adds
one missing `digest:` line to a kustomization entry; every other byte of the file stays as it was. The
result is parsed again and each reference read back before anything is written (DESIGN invariant 5).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tagtrail.errors import InvalidReference, RefsError
from tagtrail.registry.reference import ImageRef

_APP = r"(?P<app>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)"
_MARKER = re.compile(r'[ \t]*#[ \t]*\{"\$imagepolicy":[ \t]*"(?P<policy>[^"]+)"\}')
Kind = Literal["image", "tag", "name", "helm", "kustomize"]


@dataclass(frozen=True)
class Target:
    """What an app's references should say: its canonical repository, tag and digest."""

    repository: str
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class Span:
    """A scalar's source text: [start, end) in the file's characters, and its quoting style."""

    start: int
    end: int
    style: str | None
    value: str


@dataclass(frozen=True)
class Reference:
    """One place in one file that says which image of an app runs."""

    path: str
    app: str
    kind: Kind
    line: int  # 1-based
    name: str | None  # the repository as written (normalised), when the place names one
    tag: str | None
    digest: str | None
    spans: Mapping[str, Span] = field(default_factory=dict)  # role → scalar: image, tag, digest, repository…
    insert_at: int | None = None  # kustomize: where a `digest:` line goes when there is none
    indent: str = ""

    @property
    def current(self) -> str | None:
        """The reference as it reads now (name:tag@digest), for history and status."""
        if self.name is None:
            return None
        text = self.name + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.digest}" if self.digest else "")


class Matcher:
    """Which app, if any, an image repository belongs to: by the `image` template or an alias."""

    def __init__(self, image: str, aliases: list[str] | tuple[str, ...] = ()) -> None:
        templates = (image, *aliases)
        self._patterns = [_template_regex(t) for t in templates]
        self._paths = [_path_regex(t) for t in templates]
        self._canonical = image

    def app_of(self, name: str) -> str | None:
        """The app of a normalised repository name (`registry/path`), if it is managed."""
        for pattern in self._patterns:
            match = pattern.fullmatch(name)
            if match:
                return match["app"]
        return None

    def app_of_pushed(self, image: str) -> str | None:
        """The app of an image a webhook says was pushed. A registry may know itself by another name than
        the config (127.0.0.1:5000 for registry.lan), so the repository path alone also matches: a hint only
        schedules a read of the configured registry, it never names what is deployed."""
        try:
            ref = ImageRef.parse(image)
        except InvalidReference:
            return None
        app = self.app_of(ref.name)
        if app is not None:
            return app
        for pattern in self._paths:
            match = pattern.fullmatch(ref.repository)
            if match:
                return match["app"]
        return None

    def canonical(self, app: str) -> str:
        return _normalise(self._canonical.replace("{app}", app))


def _normalise(name: str) -> str:
    """registry/repository as docker reads it (`nginx` is docker.io/library/nginx)."""
    return ImageRef.parse(name).name


_PLACEHOLDER = "appplaceholder0"


def _template_regex(template: str) -> re.Pattern[str]:
    normalised = _normalise(template.replace("{app}", _PLACEHOLDER))
    return re.compile(re.escape(normalised).replace(_PLACEHOLDER, _APP))


def _path_regex(template: str) -> re.Pattern[str]:
    path = ImageRef.parse(template.replace("{app}", _PLACEHOLDER)).repository
    return re.compile(re.escape(path).replace(_PLACEHOLDER, _APP))


def _parse_ref(text: str) -> ImageRef | None:
    if not text or any(c.isspace() for c in text) or ("/" not in text and ":" not in text):
        return None
    try:
        return ImageRef.parse(text)
    except InvalidReference:
        return None


def find(path: str, text: str, matcher: Matcher) -> list[Reference]:
    """Every reference to a managed image in one YAML file (all its documents)."""
    found: list[Reference] = []
    for document in _compose(path, text):
        found.extend(_walk(document, path, text, matcher, set()))
    return sorted(found, key=lambda r: r.line)


def _compose(path: str, text: str) -> list[Node]:
    """The documents' node trees, with character positions. libyaml's parser (ruamel.yaml.clib) first: the
    same nodes, six times faster, which matters for files of hundreds of references. It speaks YAML 1.1,
    which refuses a few things 1.2 allows (`{image: repo:tag}` in a flow mapping), so anything it refuses
    is read again by ruamel.yaml's own parser, which decides."""
    try:
        return [doc for doc in YAML(typ="safe", pure=False).compose_all(text) if doc is not None]
    except YAMLError:
        pass
    try:
        return [doc for doc in YAML(typ="rt").compose_all(text) if doc is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise RefsError(
            f"{where}: not valid YAML ({(exc.problem or exc.context or '').strip()}); nothing was written"
        ) from None
    except YAMLError as exc:
        raise RefsError(f"{path}: not valid YAML ({exc}); nothing was written") from None


def _span(node: ScalarNode) -> Span:
    return Span(node.start_mark.index, node.end_mark.index, node.style or None, str(node.value))


def _mapping(node: MappingNode) -> dict[str, Node]:
    return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode)}


def _walk(node: Node, path: str, text: str, matcher: Matcher, used: set[int]) -> Iterator[Reference]:
    if isinstance(node, MappingNode):
        pairs = _mapping(node)
        split = _helm(node, pairs, path, matcher) or _kustomize(node, pairs, path, text, matcher)
        if split is not None:
            used.update(id(n) for n in pairs.values())
            yield split
        for key, value in node.value:
            yield from _walk(key, path, text, matcher, used)
            yield from _walk(value, path, text, matcher, used)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _walk(item, path, text, matcher, used)
    elif isinstance(node, ScalarNode) and id(node) not in used and node.style not in ("|", ">"):
        found = _scalar(node, path, text, matcher)
        if found is not None:
            yield found


def _scalar(node: ScalarNode, path: str, text: str, matcher: Matcher) -> Reference | None:
    span = _span(node)
    line = node.start_mark.line + 1
    end_of_line = text.find("\n", span.end)
    marker = _MARKER.match(text, span.end, end_of_line if end_of_line >= 0 else len(text))
    ref = _parse_ref(span.value)
    if marker is not None:
        _, _, rest = marker["policy"].partition(":")
        app, _, field_ = rest.partition(":")
        if field_ == "tag":
            tag, _, digest = span.value.partition("@")
            return Reference(path, app, "tag", line, None, tag or None, digest or None, {"tag": span})
        if field_ == "name":
            return Reference(
                path, app, "name", line, ref.name if ref else span.value, None, None, {"name": span}
            )
        if ref is not None:
            return Reference(path, app, "image", line, ref.name, ref.tag, ref.digest, {"image": span})
        return None
    if ref is None:
        return None
    app = matcher.app_of(ref.name)
    if app is None:
        return None
    return Reference(path, app, "image", line, ref.name, ref.tag, ref.digest, {"image": span})


def _scalar_of(pairs: dict[str, Node], key: str) -> ScalarNode | None:
    node = pairs.get(key)
    return node if isinstance(node, ScalarNode) and node.style not in ("|", ">") else None


def _helm(node: MappingNode, pairs: dict[str, Node], path: str, matcher: Matcher) -> Reference | None:
    repository, tag = _scalar_of(pairs, "repository"), _scalar_of(pairs, "tag")
    if repository is None or tag is None:
        return None
    registry = _scalar_of(pairs, "registry")
    name = f"{registry.value}/{repository.value}" if registry is not None else str(repository.value)
    ref = _parse_ref(name)
    if ref is None or ref.tag or ref.digest:
        return None
    app = matcher.app_of(ref.name)
    if app is None:
        return None
    digest = _scalar_of(pairs, "digest")
    tag_text, _, inline_digest = str(tag.value).partition("@")
    spans = {"repository": _span(repository), "tag": _span(tag)}
    if registry is not None:
        spans["registry"] = _span(registry)
    if digest is not None:
        spans["digest"] = _span(digest)
    return Reference(
        path,
        app,
        "helm",
        node.start_mark.line + 1,
        ref.name,
        tag_text or None,
        str(digest.value) if digest is not None and digest.value else inline_digest or None,
        spans,
    )


def _kustomize(
    node: MappingNode, pairs: dict[str, Node], path: str, text: str, matcher: Matcher
) -> Reference | None:
    name = _scalar_of(pairs, "name")
    if name is None or not ({"newTag", "digest", "newName"} & set(pairs)):
        return None
    new_name, new_tag, digest = (
        _scalar_of(pairs, "newName"),
        _scalar_of(pairs, "newTag"),
        _scalar_of(pairs, "digest"),
    )
    shown = _parse_ref(str(new_name.value if new_name is not None else name.value))
    if shown is None:
        return None
    app = matcher.app_of(shown.name)
    if app is None:
        return None
    spans = {"name": _span(name)}
    for role, scalar in (("newName", new_name), ("newTag", new_tag), ("digest", digest)):
        if scalar is not None:
            spans[role] = _span(scalar)
    insert_at, indent = None, ""
    if (digest is None or new_name is None) and not node.flow_style:
        last = max(pairs.values(), key=lambda v: v.end_mark.index)
        line_end = text.find("\n", last.end_mark.index)
        insert_at = len(text) if line_end < 0 else line_end + 1
        key_node = next(k for k, _ in node.value if isinstance(k, ScalarNode) and k.value == "name")
        indent = " " * key_node.start_mark.column
    return Reference(
        path,
        app,
        "kustomize",
        node.start_mark.line + 1,
        shown.name,
        str(new_tag.value) if new_tag is not None else None,
        str(digest.value) if digest is not None and digest.value else None,
        spans,
        insert_at,
        indent,
    )


def _quote(style: str | None, value: str) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


Edit = tuple[int, int, str]  # replace text[start:end] with this


def _replace(ref: Reference, role: str, value: str) -> Edit:
    span = ref.spans[role]
    return (span.start, span.end, _quote(span.style, value))


def _edits(ref: Reference, target: Target, text: str) -> list[Edit]:
    if ref.kind == "image":
        return [_replace(ref, "image", target.reference)]
    if ref.kind == "tag":
        return [_replace(ref, "tag", f"{target.tag}@{target.digest}")]
    if ref.kind == "name":
        return [_replace(ref, "name", target.repository)]
    if ref.kind == "helm":
        return _helm_edits(ref, target)
    return _kustomize_edits(ref, target, text)


def _helm_edits(ref: Reference, target: Target) -> list[Edit]:
    # Charts render repository:tag, so without a digest key the digest rides in the tag (tag@sha256:…).
    edits = [_replace(ref, "tag", target.tag if "digest" in ref.spans else f"{target.tag}@{target.digest}")]
    if "digest" in ref.spans:
        edits.append(_replace(ref, "digest", target.digest))
    if ref.name != target.repository:  # an alias: write the canonical name
        if "registry" in ref.spans:
            registry, _, repository = target.repository.partition("/")
            edits += [_replace(ref, "registry", registry), _replace(ref, "repository", repository)]
        else:
            edits.append(_replace(ref, "repository", target.repository))
    return edits


def _kustomize_edits(ref: Reference, target: Target, text: str) -> list[Edit]:
    edits = [
        _replace(ref, role, value)
        for role, value in (("newTag", target.tag), ("digest", target.digest))
        if role in ref.spans
    ]
    missing = [] if "digest" in ref.spans else [f"digest: {target.digest}"]
    if ref.name != target.repository:
        if "newName" in ref.spans:
            edits.append(_replace(ref, "newName", target.repository))
        else:  # `name` is what the manifests say: redirect it with newName, do not rename it
            missing.append(f"newName: {target.repository}")
    if not missing:
        return edits
    at = ref.insert_at
    if at is None:
        raise RefsError(
            f"{ref.path}:{ref.line}: the flow-style images entry of {ref.app} has no {missing[0].split(':')[0]}:"
            " key for tagtrail to set; write the entry in block style, or add the key by hand"
        )
    newline = "\r\n" if "\r\n" in text else "\n"
    prefix = "" if at == 0 or text[at - 1] == "\n" else newline
    edits.append((at, at, prefix + "".join(f"{ref.indent}{line}{newline}" for line in missing)))
    return edits


def rewrite(
    path: str, text: str, matcher: Matcher, targets: Mapping[str, Target]
) -> tuple[str, list[Reference]]:
    """The file with every reference of the apps in `targets` pointing at its target, and the references
    that changed. Raises RefsError (nothing is written) if the result does not read back as intended."""
    refs = [r for r in find(path, text, matcher) if r.app in targets]
    edits: list[Edit] = []
    changed = []
    for ref in refs:
        target = targets[ref.app]
        mine = [e for e in _edits(ref, target, text) if text[e[0] : e[1]] != e[2]]
        if mine:
            edits.extend(mine)
            changed.append(ref)
    edits.sort(key=lambda e: e[0])
    for (_, end, _), (start, _, _) in itertools.pairwise(edits):
        if start < end:
            raise RefsError(f"{path}: two references overlap; nothing was written")
    out = []
    position = 0
    for start, end, replacement in edits:
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    result = "".join(out)
    _verify(path, result, matcher, targets, {r.app for r in refs})
    return result, changed


def _verify(path: str, text: str, matcher: Matcher, targets: Mapping[str, Target], apps: set[str]) -> None:
    """Read the rewritten file back: every reference of the apps edited must now name its target."""
    for ref in find(path, text, matcher):
        if ref.app not in apps:
            continue
        target = targets[ref.app]
        names_ok = ref.name == target.repository or ref.kind == "tag"
        pins_ok = ref.kind == "name" or (ref.tag == target.tag and ref.digest == target.digest)
        if not (names_ok and pins_ok):
            raise RefsError(
                f"{path}:{ref.line}: the rewritten reference of {ref.app} does not read back as {target.reference}; nothing was written"
            )
