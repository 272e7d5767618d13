"""The policy's values: what the config says of an app (`AppPolicy`), what runs (`Running`), the facts it
looks at (`Facts`), what it decides (`Decision` and its `Reason`) and the facts it may ask for first (`Need`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from tagtrail.domain.provenance import (
    Claims,
    NeedAttestation,
    NeedCommit,
    NeedDigest,
    NeedRevision,
    NeedSignature,
    Refusal,
)
from tagtrail.domain.reasons import Reason
from tagtrail.domain.scheme import ParsedTag, Ranking

Action = Literal["deploy", "hold", "nothing"]


@dataclass(frozen=True)
class Gate:
    """An environment that takes builds from another (`from`): how long they must have run well there
    (`soak`), and whether a person promotes them (`manual`)."""

    source: str
    soak: timedelta = timedelta(0)
    manual: bool = False


@dataclass(frozen=True)
class AppPolicy:
    """What the config says about one app."""

    branches: tuple[str, ...]
    min_age: timedelta = timedelta(0)
    cooldown: timedelta = timedelta(0)
    pin: str | None = None
    gate: Gate | None = None


@dataclass(frozen=True)
class Evidence:
    """What the environment a gate takes from says of one app: the build it runs, since when it has run
    there rolled out and ready (None: not yet, or no record of it), the builds that failed there (rolled
    back, or their rollout failed) with why, and whether a person pinned it there."""

    tag: str | None
    digest: str | None
    since: datetime | None = None
    failed: Mapping[str, str] = field(default_factory=dict)
    pinned: bool = False


@dataclass(frozen=True)
class NeedEvidence:
    """What the environment `source` runs of this app, since when, and what failed there."""

    source: str


@dataclass(frozen=True)
class Running:
    """What is deployed now, as the deploy files say (tag and digest may be unknown)."""

    tag: str | None
    digest: str | None

    @property
    def shown(self) -> str | None:
        if self.tag is None:
            return None
        return self.tag + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class Decision:
    """What to do for one app and why. `reason` is a stable code; `sentence` is for people."""

    app: str
    action: Action
    reason: Reason
    sentence: str
    running: Running
    running_parsed: ParsedTag | None = None
    target: ParsedTag | None = None  # the build chosen, when it is a build of the scheme
    target_tag: str | None = None  # the tag chosen (a pin may name a tag outside the scheme)
    digest: str | None = None  # the chosen tag's digest: every deploy pins it
    ignored: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    behind: int | None = None  # eligible builds newer than the running one
    refusals: tuple[Refusal, ...] = ()  # candidates whose claims were not believed, newest first


@dataclass(frozen=True)
class NeedCreated:
    """The order of these tags depends on their images' `created` times: fetch them and decide again."""

    tags: tuple[str, ...]


@dataclass(frozen=True)
class NeedAncestry:
    """Whether each (candidate sha, running sha) pair's candidate is a strict ancestor of the running commit."""

    pairs: tuple[tuple[str, str], ...]


Need = (
    NeedCreated
    | NeedAncestry
    | NeedEvidence
    | NeedDigest
    | NeedCommit
    | NeedRevision
    | NeedSignature
    | NeedAttestation
)


@dataclass(frozen=True)
class Facts:
    """Everything the policy looks at besides the config. `ancestry` is None where no source repository is
    at hand (the guard is then skipped); a pair mapped to None could not be told."""

    ranking: Ranking  # of the app's eligible branches
    now: datetime
    created: Mapping[str, datetime] = field(default_factory=dict)
    ancestry: Mapping[tuple[str, str], bool | None] | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    last_automatic: datetime | None = None
    automatic: bool = False
    total_tags: int = 0
    claims: Claims = field(default_factory=Claims)
    base_rebuilt: frozenset[str] = frozenset()  # shas of builds of the running code on its moved base image
    evidence: Evidence | None = None  # what the environment the gate takes from says (NeedEvidence)
    approved: bool = False  # a person promotes (a manual gate opens for them)
