"""The deploy commit's message: a subject people read in `git log --oneline`, a body per app, and the
`Tagtrail-*` trailers that make the git log the deploy history (`tagtrail.adapters.trailers` writes and reads them)."""

from __future__ import annotations

from tagtrail.adapters import trailers
from tagtrail.adapters.trailers import Trailers
from tagtrail.targets.base import Change

SKIP_CI = "[skip ci]"
SUBJECT_MAX = 60


def commit_message(change: Change, changed: list[str], previous: dict[str, str | None]) -> str:
    images = {c.app: c for c in change.images}
    apps = [app for app in changed if app in images]
    if not apps:  # only pins changed
        names = ", ".join(sorted(change.pins))
        said = "\n".join(
            f"{app}: pinned at {tag}" if tag else f"Automatic deploys of {app} resume."
            for app, tag in sorted(change.pins.items())
        )
        pins = trailers.text(Trailers(app, change.verb, change.actor) for app in sorted(change.pins))
        return f"{change.verb}: {names}\n\n{said}\n\n{pins}\n"
    names = ", ".join(f"{a} {images[a].image.tag}" for a in apps)
    subject = f"{change.verb}: {names}" if len(names) <= SUBJECT_MAX else f"{change.verb}: {len(apps)} apps"
    if change.skip_ci:
        subject += f" {SKIP_CI}"
    body: list[str] = []
    stated: list[Trailers] = []
    for app in apps:
        item = images[app]
        before = previous.get(app)
        built = item.built_from or "?"
        body.append(
            f"{app}: {before or 'nothing'}\n  → {item.image.reference}\n  built from commit {built}; {item.sentence}"
            + (f"\n  promoted from {item.promoted_from}: {item.evidence}" if item.promoted_from else "")
        )
        stated.append(
            Trailers(
                app,
                item.reason,
                change.actor,
                before,
                item.image.reference,
                item.built_from,
                item.promoted_from,
                item.evidence,
            )
        )
    return subject + "\n\n" + "\n\n".join(body) + "\n\n" + trailers.text(stated) + "\n"
