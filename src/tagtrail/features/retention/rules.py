"""Which tags retention keeps and which it may delete, each with its reason. Pure: no I/O.

The rules, in the order they are tried (the first that speaks decides):
1. always kept, over any rule below: what runs now, every pin, the builds of the last deploys (rollback
   targets); where a rule would have deleted one of them, the verdict says so;
2. cosign-style referrer tags (`sha256-<hex>.sig`, `.att`, the OCI fallback `sha256-<hex>`) are neither
   kept nor deleted here: they follow their subject, which only the digest graph knows (`graph.py`);
3. tags outside the scheme are kept, unless `delete_unscheme` lists them;
4. anything younger than `min_age` is kept (a build in flight is never pruned);
5. `-dirty` laptop builds go once older than `max_age_dirty`;
6. the newest `keep_deploy` builds of each deploy branch are kept, older ones go;
7. the newest `keep_other` builds of every other branch are kept unless older than `max_age_other`.

This decides per tag only. Whether a digest is deleted is for `graph.py`: a digest goes only when every tag
on it goes and nothing kept references it.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from tagtrail.domain.humanize import age
from tagtrail.domain.scheme import ParsedTag, Scheme
from tagtrail.domain.scheme.tags import DIRTY_SUFFIX

REFERRER_TAG = re.compile(r"sha256-([0-9a-f]{64})(?:\.[a-z]+)?")
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Why(StrEnum):
    """Why a tag or digest is kept or deleted: a stable code, shown by `tagtrail prune` and stored in the
    decision log."""

    # kept
    DEPLOYED = "deployed"
    PINNED = "pinned"
    ROLLBACK = "rollback-target"
    TOO_YOUNG = "too-young"
    NEWEST = "newest"
    NOT_OF_SCHEME = "not-of-scheme"
    SHARES_DIGEST = "shares-digest"  # its digest carries a kept tag: deleting it would delete that tag
    REFERENCED = "referenced"  # a kept index lists it, or it is a referrer of a kept image
    # deleted
    OLD_BUILD = "old-build"  # of a deploy branch, beyond the newest keep_deploy
    OLD_OTHER = "old-other-branch"  # of another branch, beyond keep_other or older than max_age_other
    OLD_DIRTY = "old-dirty"
    LISTED = "listed"  # outside the scheme, listed in delete_unscheme
    WITH_SUBJECT = "with-subject"  # a referrer (signature, attestation) of a deleted image
    ORPHAN = "orphan"  # untagged, listed by nothing kept (GitHub Packages: an interrupted run's child)
    # undecided here: follows its subject in the digest graph
    REFERRER = "referrer"


KEPT = frozenset(
    {
        Why.DEPLOYED,
        Why.PINNED,
        Why.ROLLBACK,
        Why.TOO_YOUNG,
        Why.NEWEST,
        Why.NOT_OF_SCHEME,
        Why.SHARES_DIGEST,
        Why.REFERENCED,
    }
)


@dataclass(frozen=True)
class Rules:
    """One app's retention settings, resolved from the config."""

    keep_deploy: int = 20
    keep_other: int = 3
    max_age_other: timedelta = timedelta(days=30)
    max_age_dirty: timedelta = timedelta(days=2)
    min_age: timedelta = timedelta(hours=1)
    delete_unscheme: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What retention must know besides the tags: what runs, pins, rollback targets, the time."""

    now: datetime
    deploy_branches: tuple[str, ...]
    running: frozenset[str] = frozenset()  # tags
    pins: frozenset[str] = frozenset()
    rollback: frozenset[str] = frozenset()
    created: Mapping[str, datetime] = field(default_factory=dict)  # for tags outside the scheme


@dataclass(frozen=True)
class Verdict:
    """One tag: kept or not, and why, in a code and a sentence."""

    tag: str
    why: Why
    sentence: str

    @property
    def kept(self) -> bool:
        return self.why in KEPT


@dataclass(frozen=True)
class NeedCreated:
    """These listed tags are outside the scheme: their age is their image's `created` time."""

    tags: tuple[str, ...]


def referrer_subject(tag: str) -> str | None:
    """The digest a cosign-style referrer tag names (`sha256-<hex>.sig` → `sha256:<hex>`), or None."""
    match = REFERRER_TAG.fullmatch(tag)
    return f"sha256:{match[1]}" if match else None


def judge(scheme: Scheme, tags: Sequence[str], rules: Rules, facts: Facts) -> list[Verdict] | NeedCreated:
    """A verdict for every tag, in the order given, or the `created` times it needs first."""
    tokens = {scheme.branch_token(b) for b in facts.deploy_branches}
    verdicts: dict[str, Verdict] = {}
    builds: dict[str, list[tuple[datetime, str]]] = defaultdict(list)  # branch → (time, tag)
    need: list[str] = []
    for tag in tags:
        if referrer_subject(tag):
            verdicts[tag] = Verdict(tag, Why.REFERRER, "follows the image it signs or describes")
            continue
        parsed, dirty = _read(scheme, tag)
        if parsed is None:
            unscheme = _unscheme(tag, rules, facts, need)
            if unscheme is not None:
                verdicts[tag] = unscheme
            continue
        built = max(parsed.instants, default=None)
        old = facts.now - built if built else None
        if old is not None and old < rules.min_age:
            verdicts[tag] = Verdict(
                tag, Why.TOO_YOUNG, f"built {_span(old)} ago, younger than {_span(rules.min_age)}"
            )
        elif dirty:
            verdicts[tag] = _dirty(tag, old, rules)
        else:
            builds[parsed.branch].append((built or _EARLIEST, tag))
    if need:
        return NeedCreated(tuple(need))
    for branch, found in builds.items():
        found.sort(reverse=True)
        deploy = branch in tokens
        for rank, (built, tag) in enumerate(found):
            verdicts[tag] = _by_rank(tag, branch, deploy, rank, facts.now - built, rules)
    return [_always(verdicts[tag], facts) for tag in tags]


def _always(verdict: Verdict, facts: Facts) -> Verdict:
    """What runs, pins and rollback targets are kept whatever the rules say; the plan says when the rules
    alone would have deleted them."""
    tag = verdict.tag
    if tag in facts.running:
        why, sentence = Why.DEPLOYED, "runs now"
    elif tag in facts.pins:
        why, sentence = Why.PINNED, "pinned"
    elif tag in facts.rollback:
        why, sentence = Why.ROLLBACK, "deployed before: a rollback target"
    else:
        return verdict
    if not verdict.kept and verdict.why is not Why.REFERRER:
        sentence += f" (the rules alone would delete it: {verdict.sentence})"
    return Verdict(tag, why, sentence)


def _read(scheme: Scheme, tag: str) -> tuple[ParsedTag | None, bool]:
    parsed = scheme.parse(tag)
    if isinstance(parsed, ParsedTag):
        return parsed, False
    if parsed.code == "dirty":
        stem = scheme.parse(tag[: -len(DIRTY_SUFFIX)])
        return (stem, True) if isinstance(stem, ParsedTag) else (None, False)
    return None, False


def _unscheme(tag: str, rules: Rules, facts: Facts, need: list[str]) -> Verdict | None:
    pattern = next((p for p in rules.delete_unscheme if fnmatch.fnmatchcase(tag, p)), None)
    if pattern is None:
        return Verdict(tag, Why.NOT_OF_SCHEME, "not a build of the scheme (only delete_unscheme tags go)")
    created = facts.created.get(tag)
    if created is None:
        need.append(tag)
        return None
    old = facts.now - created
    if old < rules.min_age:
        return Verdict(tag, Why.TOO_YOUNG, f"created {_span(old)} ago, younger than {_span(rules.min_age)}")
    return Verdict(tag, Why.LISTED, f"outside the scheme and listed in delete_unscheme ('{pattern}')")


def _dirty(tag: str, old: timedelta | None, rules: Rules) -> Verdict:
    if old is not None and old <= rules.max_age_dirty:
        return Verdict(tag, Why.NEWEST, f"a -dirty build younger than {_span(rules.max_age_dirty)}")
    shown = f"{_span(old)} old" if old is not None else "of unknown age"
    return Verdict(tag, Why.OLD_DIRTY, f"a -dirty laptop build {shown}, past {_span(rules.max_age_dirty)}")


def _by_rank(tag: str, branch: str, deploy: bool, rank: int, old: timedelta, rules: Rules) -> Verdict:
    if deploy:
        if rank < rules.keep_deploy:
            return Verdict(tag, Why.NEWEST, f"among the newest {rules.keep_deploy} of {branch}")
        return Verdict(tag, Why.OLD_BUILD, f"{branch} build beyond the newest {rules.keep_deploy}")
    if old > rules.max_age_other:
        return Verdict(
            tag, Why.OLD_OTHER, f"{branch} build {_span(old)} old, past {_span(rules.max_age_other)}"
        )
    if rank < rules.keep_other:
        return Verdict(tag, Why.NEWEST, f"among the newest {rules.keep_other} of {branch}")
    return Verdict(tag, Why.OLD_OTHER, f"{branch} build beyond the newest {rules.keep_other}")


def _span(delta: timedelta) -> str:
    return age(_EPOCH, _EPOCH + delta)
