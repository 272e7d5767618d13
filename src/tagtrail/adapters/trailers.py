"""The `Tagtrail-*` trailers of a deploy commit, written and read here only: they make the git log the
deploy history (DESIGN, "State"), so the writer (`targets/message.py`) and the readers (`history.py`,
`insights/read.py`) agree on every name and on what stands for "nothing".

A deploy commit carries one group per app, each starting at `Tagtrail-App`. An image that moved says what
ran before (`none`: nothing), what runs now, the commit it was built from (`?`: not known), the reason and
who acted; a pin or unpin that left the reference as it was says only the reason and who acted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

APP = "Tagtrail-App"
FROM = "Tagtrail-From"
TO = "Tagtrail-To"
COMMIT = "Tagtrail-Commit"
REASON = "Tagtrail-Reason"
ACTOR = "Tagtrail-Actor"
PROMOTED_FROM = "Tagtrail-Promoted-From"  # the environment a promoted build ran in first
EVIDENCE = "Tagtrail-Evidence"  # what it showed there: digest, rolled out at, soaked for (or forced: why)
_LINE = re.compile(r"^(Tagtrail-[A-Za-z-]+): (.*)$", re.MULTILINE)
_NOTHING = "none"
_UNKNOWN = "?"


@dataclass(frozen=True)
class Trailers:
    """What a deploy commit says of one app. `after` None: a pin or unpin that left its reference as it
    was; `before` None: nothing ran; `commit` None: the build's commit is not known."""

    app: str
    reason: str | None = None
    actor: str | None = None
    before: str | None = None
    after: str | None = None
    commit: str | None = None
    promoted_from: str | None = None
    evidence: str | None = None

    def lines(self) -> list[str]:
        if self.after is None:
            return [f"{APP}: {self.app}", f"{REASON}: {self.reason}", f"{ACTOR}: {self.actor}"]
        promoted = (
            [f"{PROMOTED_FROM}: {self.promoted_from}", f"{EVIDENCE}: {self.evidence}"]
            if self.promoted_from
            else []
        )
        return [
            f"{APP}: {self.app}",
            f"{FROM}: {self.before or _NOTHING}",
            f"{TO}: {self.after}",
            f"{COMMIT}: {self.commit or _UNKNOWN}",
            f"{REASON}: {self.reason}",
            f"{ACTOR}: {self.actor}",
            *promoted,
        ]


def text(apps: Iterable[Trailers]) -> str:
    """The trailer block of a commit message: each app's group, in the order given."""
    return "\n".join(line for app in apps for line in app.lines())


def groups(message: str) -> list[dict[str, str]]:
    """The trailer groups of a commit message as written, one per app (each starts at `Tagtrail-App`)."""
    found: list[dict[str, str]] = []
    for key, value in _LINE.findall(message):
        if key == APP:
            found.append({})
        if found:
            found[-1][key] = value.strip()
    return found


def parse(message: str) -> list[Trailers]:
    """What a commit message says of each app, in the order written; empty for a commit of a person."""
    return [
        Trailers(
            group[APP],
            group.get(REASON),
            group.get(ACTOR),
            None if group.get(FROM) in (None, _NOTHING) else group[FROM],
            group.get(TO),
            None if group.get(COMMIT) in (None, _UNKNOWN) else group[COMMIT],
            group.get(PROMOTED_FROM),
            group.get(EVIDENCE),
        )
        for group in groups(message)
    ]
