"""The deploy policy: from what runs and the registry's tags, a Decision with its reason. Pure: no I/O.

Guards, each a DESIGN invariant:
- only tags of an eligible branch and of the scheme are ever chosen (never -dirty builds);
- never an older build than the one running: the time in the tag orders builds; a running tag that cannot
  be read (a cold cache, a hand-written reference) is "unknown", never "older";
- a candidate whose commit is a strict ancestor of the running commit is not an upgrade, whatever its
  timestamp says (builds finish out of order); a newer build of the same commit is (a base-image rebuild);
- equal times, or a local time inside a DST overlap, are ordered by the image's `created` time: the policy
  asks for those (NeedCreated) and is called again with them, so configs are fetched only then;
- a pinned app holds at its pin; at most one automatic deploy per app per cooldown window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from tagtrail.scheme import ParsedTag, Ranking, Rejected, Scheme

Action = Literal["deploy", "hold", "nothing"]
# Whether commit `candidate` is a strict ancestor of commit `running` (None: cannot tell).
Ancestry = Callable[[str, str], bool | None]
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AppPolicy:
    """What the config says about one app."""

    branches: tuple[str, ...]
    min_age: timedelta = timedelta(0)
    cooldown: timedelta = timedelta(0)
    pin: str | None = None


@dataclass(frozen=True)
class Running:
    """What is deployed now, as the deploy files say (tag and digest may be unknown)."""

    tag: str | None
    digest: str | None


@dataclass(frozen=True)
class Decision:
    """What to do for one app and why. `reason` is a stable code; `sentence` is for people."""

    app: str
    action: Action
    reason: str
    sentence: str
    running: Running
    running_parsed: ParsedTag | None = None
    target: ParsedTag | None = None
    ignored: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    behind: int | None = None  # eligible builds newer than the running one

    @property
    def target_tag(self) -> str | None:
        return self.target.tag if self.target else None


@dataclass(frozen=True)
class NeedCreated:
    """The order of these tags depends on their images' `created` times: fetch them and decide again."""

    tags: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """Everything the policy looks at besides the config."""

    ranking: Ranking  # of the app's eligible branches
    now: datetime
    created: Mapping[str, datetime] = field(default_factory=dict)
    ancestry: Ancestry | None = None
    last_automatic: datetime | None = None
    automatic: bool = False
    total_tags: int = 0


@dataclass
class _Context:
    app: str
    running: Running
    current: ParsedTag | None
    facts: Facts
    ignored: Counter[str]

    def decision(
        self,
        action: Action,
        reason: str,
        sentence: str,
        target: ParsedTag | None = None,
        behind: int | None = None,
    ) -> Decision:
        ignored = {k: v for k, v in self.ignored.items() if v}
        return Decision(
            self.app,
            action,
            reason,
            sentence,
            self.running,
            self.current,
            target,
            ignored,
            self.facts.total_tags,
            behind,
        )


def decide(
    app: str, scheme: Scheme, policy: AppPolicy, running: Running, facts: Facts
) -> Decision | NeedCreated:
    """The decision for one app, or the tags whose `created` times it needs first."""
    parsed = scheme.parse(running.tag) if running.tag else None
    ctx = _Context(
        app, running, parsed if isinstance(parsed, ParsedTag) else None, facts, Counter(facts.ranking.ignored)
    )
    if policy.pin is not None:
        return _pinned(ctx, scheme, policy.pin)
    ordered = _candidates(ctx)
    if isinstance(ordered, NeedCreated):
        return ordered
    if not ordered:
        return ctx.decision(
            "hold", "no-eligible-tags", f"no tag of {', '.join(policy.branches)} in the scheme"
        )
    behind = _behind(ordered, ctx.current)
    chosen = _first_acceptable(ctx, ordered, policy)
    if isinstance(chosen, NeedCreated):
        return chosen
    if chosen is None or chosen.tag == running.tag:
        # Newer builds that a guard held back are worth saying, even though what runs stays.
        if ctx.ignored["too-young"]:
            return ctx.decision(
                "hold",
                "too-young",
                f"the newer builds are younger than the soak time {policy.min_age}",
                chosen,
                behind,
            )
        if ctx.ignored["ancestor-of-running"]:
            return ctx.decision(
                "hold",
                "ancestor-of-running",
                "the newer tags are of commits the running one already contains",
                chosen,
                behind,
            )
        if chosen is not None:
            return ctx.decision(
                "nothing", "up-to-date", f"{running.tag} is the newest eligible build", chosen, 0
            )
        return ctx.decision("nothing", "up-to-date", f"nothing newer than {running.tag}", None, behind)
    if (
        facts.automatic
        and facts.last_automatic is not None
        and facts.now - facts.last_automatic < policy.cooldown
    ):
        wait = int((policy.cooldown - (facts.now - facts.last_automatic)).total_seconds())
        return ctx.decision(
            "hold",
            "cooldown",
            f"{chosen.tag} waits {wait} s: one automatic deploy per cooldown",
            chosen,
            behind,
        )
    if ctx.current is None:
        why = f"{running.tag or 'nothing'} is not a build of the scheme: deploying the newest eligible build"
        return ctx.decision("deploy", "running-unknown", why, chosen, behind)
    if chosen.sha == ctx.current.sha:
        return ctx.decision(
            "deploy",
            "rebuild",
            f"{chosen.tag} rebuilds the running commit {chosen.sha} (a newer"
            " image of the same code, e.g. a base-image fix)",
            chosen,
            behind,
        )
    return ctx.decision("deploy", "newer-build", f"{chosen.tag} is newer than {running.tag}", chosen, behind)


def _pinned(ctx: _Context, scheme: Scheme, pin: str) -> Decision:
    parsed = scheme.parse(pin)
    target = parsed if isinstance(parsed, ParsedTag) else ParsedTag(pin, "", "", ())
    readable = [
        p for t in ctx.facts.ranking.newest_first if isinstance(p := ctx.facts.ranking.parse(t), ParsedTag)
    ]
    behind = _behind(readable, ctx.current)
    if ctx.running.tag == pin:
        return ctx.decision(
            "hold", "pinned", f"pinned at {pin}; `tagtrail unpin {ctx.app}` resumes updates", target, behind
        )
    return ctx.decision(
        "deploy",
        "pinned",
        f"pinned at {pin}, but the files say {ctx.running.tag or 'nothing'}",
        target,
        behind,
    )


def _candidates(ctx: _Context) -> list[ParsedTag] | NeedCreated:
    """Eligible, readable tags, newest first; the top ones ordered by `created` when their times tie."""
    ranking = ctx.facts.ranking
    parsed: list[ParsedTag] = []
    for tag in ranking.newest_first:
        result = ranking.parse(tag)
        if isinstance(result, Rejected):
            ctx.ignored[result.code] += 1
        else:
            parsed.append(result)
    parsed.sort(key=lambda p: (max(p.instants, default=_EARLIEST), p.tag), reverse=True)
    if not parsed:
        return parsed
    top = parsed[0]
    tied = [p for p in parsed if _overlaps(p, top)]
    if len(tied) > 1 or top.ambiguous:
        unknown = tuple(p.tag for p in tied if p.tag not in ctx.facts.created)
        if unknown:
            return NeedCreated(unknown)
        tied.sort(key=lambda p: (ctx.facts.created[p.tag], p.tag), reverse=True)
        parsed = tied + parsed[len(tied) :]
    return parsed


def _first_acceptable(
    ctx: _Context, ordered: list[ParsedTag], policy: AppPolicy
) -> ParsedTag | NeedCreated | None:
    """The newest candidate that passes every guard, the running tag itself, or None."""
    for candidate in ordered:
        if candidate.tag == ctx.running.tag:
            return candidate
        older = _older(candidate, ctx.current, ctx.facts.created)
        if older is None and ctx.current is not None:  # equal times: only `created` can tell
            return NeedCreated(
                tuple(t for t in (candidate.tag, ctx.current.tag) if t not in ctx.facts.created)
            )
        if older:
            ctx.ignored["older-than-running"] += 1
            continue
        if candidate.instants and max(candidate.instants) > ctx.facts.now - policy.min_age:
            ctx.ignored["too-young"] += 1
            continue
        current = ctx.current
        ancestry = ctx.facts.ancestry
        if (
            current is not None
            and ancestry is not None
            and candidate.sha != current.sha
            and ancestry(candidate.sha, current.sha)
        ):
            ctx.ignored["ancestor-of-running"] += 1
            continue
        return candidate
    return None


def _behind(ordered: list[ParsedTag], current: ParsedTag | None) -> int | None:
    if current is None or not current.instants:
        return None
    running = max(current.instants)
    return sum(1 for c in ordered if c.instants and min(c.instants) > running)


def _overlaps(a: ParsedTag, b: ParsedTag) -> bool:
    """Whether two tags could name the same moment (equal instants, or a DST overlap spanning both)."""
    if not a.instants or not b.instants:
        return False
    return min(a.instants) <= max(b.instants) and min(b.instants) <= max(a.instants)


def _older(candidate: ParsedTag, running: ParsedTag | None, created: Mapping[str, datetime]) -> bool | None:
    """Whether the candidate is an older build than the running one; None when only `created` can tell.
    An unknown running build is never newer than anything."""
    if running is None or not running.instants or not candidate.instants:
        return False
    if not _overlaps(candidate, running):
        return max(candidate.instants) < min(running.instants)
    if candidate.tag not in created or running.tag not in created:
        return None
    return (created[candidate.tag], candidate.tag) < (created[running.tag], running.tag)
