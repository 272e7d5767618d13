"""What a person reads in tagtrail's pull request: a title, a body in GitHub's markdown (per app: from
build → to build, the commits between linked, the reason, the provenance the policy checked: the commit on
its branch, the signature or attestation, the base image the build records), within GitHub's 65,536
characters, and a hidden marker that tells tagtrail, reading the list of pull requests, which builds each
one carries. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tagtrail.adapters.refs import Image
from tagtrail.domain.scheme import ParsedTag, Scheme
from tagtrail.errors import TagtrailError
from tagtrail.targets.base import Change, ImageChange

_MARKER = re.compile(r"<!-- tagtrail (\{.*?\}) -->", re.DOTALL)
TITLE_MAX = 120
BODY_MAX = 65_536  # GitHub refuses a longer description


@dataclass(frozen=True)
class Marker:
    """What a pull request carries, as tagtrail wrote it: per app the build it deploys (its digest's first
    16 hex digits, or the whole reference as tagtrail wrote it before; None: a pin or unpin only), the verb, and whether tagtrail itself closed it (superseded: not a person's no)."""

    verb: str
    apps: Mapping[str, str | None] = field(default_factory=dict)
    superseded: bool = False

    def text(self) -> str:
        data = {"verb": self.verb, "apps": dict(self.apps), "superseded": self.superseded}
        return f"<!-- tagtrail {json.dumps(data, sort_keys=True)} -->"

    @classmethod
    def read(cls, body: str) -> Marker | None:
        """The marker in a pull request's body; None for a pull request tagtrail did not write."""
        found = _MARKER.search(body or "")
        if found is None:
            return None
        try:
            data = json.loads(found.group(1))
            apps = {str(k): (str(v) if v is not None else None) for k, v in dict(data["apps"]).items()}
            return cls(str(data["verb"]), apps, bool(data.get("superseded")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def superseding(self) -> Marker:
        return Marker(self.verb, self.apps, True)


def with_marker(body: str, marker: Marker) -> str:
    """`body` with its marker replaced by `marker` (added where it had none)."""
    kept = _MARKER.sub("", body or "").rstrip()
    return f"{kept}\n\n{marker.text()}\n"


@dataclass(frozen=True)
class Links:
    """Where a reader clicks: the web address of the source repository, for commits and compares, and the
    compare view of the whole change (the deploy branch against tagtrail's), for a description cut short."""

    web: str | None  # e.g. https://github.com/acme/homelab; None: commits are shown, not linked
    change: str | None = None  # e.g. https://github.com/acme/homelab/compare/main...tagtrail/reconcile

    def commit(self, sha: str) -> str:
        return f"[`{sha[:12]}`]({self.web}/commit/{sha})" if self.web else f"`{sha[:12]}`"

    def between(self, before: str, after: str) -> str:
        if not self.web:
            return f"`{before[:12]}...{after[:12]}`"
        return f"[{before[:7]}...{after[:7]}]({self.web}/compare/{before}...{after})"


def title(change: Change, apps: list[str], previous: Mapping[str, str | None]) -> str:
    """One line: the verb and each app's new tag (or the pins)."""
    images = {c.app: c for c in change.images}
    said = [f"{app} {images[app].image.tag}" if app in images else app for app in apps]
    text = f"tagtrail {change.verb}: {', '.join(said)}"
    return text if len(text) <= TITLE_MAX else f"tagtrail {change.verb}: {len(apps)} apps"


def body(
    change: Change, apps: list[str], previous: Mapping[str, str | None], scheme: Scheme, links: Links
) -> str:
    """The pull request's description, with its marker, within GitHub's limit: where every app's section
    does not fit, the first ones and a line saying how many more, linking the whole change."""
    images = {c.app: c for c in change.images}
    head = f"tagtrail proposes this {change.verb} (by {change.actor}). Merging it is the deploy."
    sections = [_section(app, change, images.get(app), previous.get(app), scheme, links) for app in apps]
    marker = Marker(change.verb, {app: _short(images[app].image) if app in images else None for app in apps})
    tail = f"\n\n{marker.text()}\n"
    whole = "\n\n".join([head, *sections]) + tail
    if len(whole) <= BODY_MAX:
        return whole
    room = BODY_MAX - len(tail) - len(_cut(len(sections), links)) - 2
    if len(head) > room:
        raise TagtrailError(
            f"the pull request for {len(apps)} apps changed together would not fit GitHub's"
            f" {BODY_MAX:,} characters; set deploy.git.pull_request.one_per: app"
        )
    kept, used = [head], len(head)
    for section in sections:
        if used + 2 + len(section) > room:
            break
        kept.append(section)
        used += 2 + len(section)
    return "\n\n".join([*kept, _cut(len(sections) - len(kept) + 1, links)]) + tail


def _section(
    app: str,
    change: Change,
    item: ImageChange | None,
    before: str | None,
    scheme: Scheme,
    links: Links,
) -> str:
    if item is None:
        pin = change.pins.get(app)
        return f"### {app}\n\n" + (f"Pinned at `{pin}`." if pin else "Unpinned: automatic deploys resume.")
    rows = [
        f"### {app}",
        "",
        "| | build |",
        "|---|---|",
        f"| from | `{before or 'nothing'}` |",
        f"| to | `{item.image.reference}` |",
        "",
        f"**Why:** `{item.reason}`: {item.sentence}",
    ]
    commits = _commits(scheme, before, item.image.tag, item.built_from, links)
    if commits:
        rows.append(f"**Commits:** {commits}")
    if change.pins.get(app):
        rows.append(f"**Pinned** at `{change.pins[app]}`, so automation leaves it there.")
    rows.append(_provenance(item, links))
    return "\n".join(rows)


def _provenance(item: ImageChange, links: Links) -> str:
    """What the policy's checks found of the build, each said only where it was checked."""
    found = item.proof
    if found is None:
        return f"**Not checked:** a person's {item.reason} names its build; tagtrail deploys it as named."
    said = []
    if found.commit:
        said.append(f"commit {links.commit(found.commit)} is on `{found.branch}`")
    elif item.built_from:
        said.append(
            f"commit {links.commit(item.built_from)} (no source repository at hand to find it on a branch)"
        )
    if found.label:
        said.append("the image's revision label names that commit")
    if found.signature:
        said.append(f"signature: {found.signature}")
    if found.attestation:
        said.append(f"attestation: {found.attestation}")
    if found.base:
        name, digest = found.base
        said.append(f"base image `{name}@{digest}`")
    else:
        said.append("the image records no base image")
    return "**Provenance:** " + "; ".join(said) + "."


def _cut(more: int, links: Links) -> str:
    where = f"[the whole change]({links.change})" if links.change else "the pull request's files"
    return f"… and {more} more apps, not shown here to keep within GitHub's limit: see {where}."


def _short(image: Image) -> str:
    """The marker's note of a build: its digest's first 16 hex digits (`Review.proposes`), so that the
    marker of a reconcile's many apps fits a description."""
    return image.digest.removeprefix("sha256:")[:16]


def _commits(scheme: Scheme, before: str | None, tag: str, built: str | None, links: Links) -> str | None:
    after = built or _sha(scheme, tag)
    if after is None:
        return None
    old = _sha(scheme, _tag_of(before)) if before else None
    return links.between(old, after) if old and old != after else links.commit(after)


def _tag_of(reference: str) -> str:
    name = reference.split("@", 1)[0]
    return name.rsplit(":", 1)[-1] if ":" in name.rsplit("/", 1)[-1] else name


def _sha(scheme: Scheme, tag: str) -> str | None:
    parsed = scheme.parse(tag)
    return parsed.sha if isinstance(parsed, ParsedTag) and parsed.sha else None
