"""Edit: the text spans to replace so that each reference names its target, and the rewritten file.

Only value tokens change, and only their tag and digest: the repository stays as the user wrote it (short or
long form, a registry alias), quotes stay, anchors and `!tags` before a value stay. The one addition is a
kustomization entry's missing `newTag:` or `digest:` line, which tagtrail needs to pin `tag@digest`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import NamedTuple

from tagtrail.adapters.refs._find import find
from tagtrail.adapters.refs._model import Image, Matcher, Reference, Span, split_written
from tagtrail.adapters.refs._verify import verify
from tagtrail.errors import RefsError

# Plain scalars YAML would read as something other than a string (1.10 is the float 1.1): quoted when
# written, or a tag such as 1.10 would reach the chart as 1.1.
_NOT_A_STRING = re.compile(
    r"[-+]?(?:\d[\d_]*)?(?:\.[\d_]*)?(?:[eE][-+]?\d+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN)|(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)"
    r"|null|Null|NULL|~|[-+]?\d+(?::[0-5]?\d)+(?:\.\d*)?"
)


class Edit(NamedTuple):
    """Replace text[start:end] with `text`; `line` names the reference in a refusal. `lines`: whole lines
    added (a kustomization's missing keys), not a value token replaced."""

    start: int
    end: int
    text: str
    line: int
    lines: bool = False


def quote(style: str | None, value: str) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or _NOT_A_STRING.fullmatch(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _replace(ref: Reference, role: str, value: str) -> Edit:
    span: Span = ref.spans[role]
    return Edit(span.start, span.end, span.lead + quote(span.style, value), ref.line)


def _edits(ref: Reference, target: Image, text: str, matcher: Matcher, digest_marked: set[str]) -> list[Edit]:
    if ref.kind == "image":
        written, _, _ = split_written(ref.spans["image"].value)
        name = written if matcher.names(written, ref.app, target) else target.repository
        return [_replace(ref, "image", f"{name}:{target.tag}@{target.digest}")]
    if ref.kind == "tag":
        # Flux's `:tag` field holds the tag; with no `:digest` marker beside it, the digest rides in it
        # (tag@sha256:…), as tagtrail pins every deploy.
        pinned = target.tag if ref.app in digest_marked else f"{target.tag}@{target.digest}"
        return [_replace(ref, "tag", pinned)]
    if ref.kind == "digest":
        return [_replace(ref, "digest", target.digest)]
    if ref.kind == "name":
        written = ref.spans["name"].value
        return [] if matcher.names(written, ref.app, target) else [_replace(ref, "name", target.repository)]
    if ref.kind == "helm":
        # Charts render repository:tag, so without a digest key the digest rides in the tag (tag@sha256:…).
        if "digest" not in ref.spans:
            return [_replace(ref, "tag", f"{target.tag}@{target.digest}")]
        return [_replace(ref, "tag", target.tag), _replace(ref, "digest", target.digest)]
    return _kustomize_edits(ref, target, text)


def _kustomize_edits(ref: Reference, target: Image, text: str) -> list[Edit]:
    roles = (("newTag", target.tag), ("digest", target.digest))
    edits = [_replace(ref, role, value) for role, value in roles if role in ref.spans]
    missing = [f"{role}: {quote(None, value)}" for role, value in roles if role not in ref.spans]
    if not missing:
        return edits
    at = ref.insert_at
    if at is None:
        raise RefsError(
            f"{ref.path}:{ref.line}: the flow-style images entry of {ref.app} has no {missing[0].split(':')[0]}:"
            " key for tagtrail to set; write the entry in block style, or add the key by hand; nothing was written"
        )
    newline = "\r\n" if "\r\n" in text else "\n"
    prefix = "" if at == 0 or text[at - 1] == "\n" else newline
    added = prefix + "".join(f"{ref.indent}{line}{newline}" for line in missing)
    edits.append(Edit(at, at, added, ref.line, lines=True))
    return edits


def rewrite(
    path: str, text: str, matcher: Matcher, targets: Mapping[str, Image]
) -> tuple[str, list[Reference]]:
    """The file with every reference of the apps in `targets` pointing at its target, and the references
    that changed. Raises RefsError (nothing is written) if the result does not read back as intended."""
    result, changed, _ = rewrite_found(path, text, matcher, targets, find(path, text, matcher))
    return result, changed


def rewrite_found(
    path: str, text: str, matcher: Matcher, targets: Mapping[str, Image], before: list[Reference]
) -> tuple[str, list[Reference], list[Reference]]:
    """`rewrite`, given the references `find` returned for `text` (kept from reading it, so a large file is
    not searched twice); also returns the references of the result, as the proof read them back."""
    refs = [r for r in before if r.app in targets]
    digest_marked = {r.app for r in refs if r.kind == "digest"}
    edits: dict[tuple[int, int, str], Edit] = {}  # an aliased value is edited once
    changed = []
    for ref in refs:
        mine = [
            e
            for e in _edits(ref, targets[ref.app], text, matcher, digest_marked)
            if text[e.start : e.end] != e.text
        ]
        if mine:
            edits.update((e[:3], e) for e in mine)
            changed.append(ref)
    ordered = sorted(edits.values())
    for first, second in itertools.pairwise(ordered):
        if second.start < first.end or (second.start == first.start and first.start == first.end):
            raise RefsError(
                f"{path}:{second.line}: this reference and the one on line {first.line} are one value in the"
                " file (an alias) and would be set to two different images; give each its own value;"
                " nothing was written"
            )
    out = []
    position = 0
    for edit in ordered:
        out.append(text[position : edit.start])
        out.append(edit.text)
        position = edit.end
    out.append(text[position:])
    result = "".join(out)
    # Each value token replaced by one scalar token (an image reference, quoted as the value was or so YAML
    # reads it as a string) leaves the nesting and aliases of a text that passed the limits as they were:
    # the proof re-checks only its size. Added lines (a kustomization's keys) are checked in full.
    shaped = not any(edit.lines for edit in ordered)
    return result, changed, verify(path, result, matcher, targets, before, shaped=shaped)
