"""What a person reads in tagtrail's pull request: a title, a body in GitHub's markdown (per app: from
build → to build, the commits between linked, the reason, what was checked), and a hidden marker that
tells tagtrail, reading the list of pull requests, which builds each one carries. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tagtrail.domain.scheme import ParsedTag, Scheme
from tagtrail.targets.base import Change

_MARKER = re.compile(r"<!-- tagtrail (\{.*?\}) -->", re.DOTALL)
TITLE_MAX = 120


@dataclass(frozen=True)
class Marker:
    """What a pull request carries, as tagtrail wrote it: per app the reference it deploys (None: a pin or
    unpin only), the verb, and whether tagtrail itself closed it (superseded: not a person's no)."""

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
    """Where a reader clicks: the web address of the source repository, for commits and compares."""

    web: str | None  # e.g. https://github.com/acme/homelab; None: commits are shown, not linked

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
    change: Change,
    apps: list[str],
    previous: Mapping[str, str | None],
    scheme: Scheme,
    links: Links,
    checked: Mapping[str, list[str]],
) -> str:
    """The pull request's description, with its marker. `checked`: per app, what was verified of its build."""
    images = {c.app: c for c in change.images}
    parts = [f"tagtrail proposes this {change.verb} (by {change.actor}). Merging it is the deploy."]
    for app in apps:
        item = images.get(app)
        if item is None:
            pin = change.pins.get(app)
            parts.append(
                f"### {app}\n\n" + (f"Pinned at `{pin}`." if pin else "Unpinned: automatic deploys resume.")
            )
            continue
        before = previous.get(app)
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
        if checked.get(app):
            rows.append("**Checked:** " + "; ".join(checked[app]) + ".")
        parts.append("\n".join(rows))
    marker = Marker(
        change.verb, {app: images[app].image.reference if app in images else None for app in apps}
    )
    return "\n\n".join(parts) + f"\n\n{marker.text()}\n"


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
