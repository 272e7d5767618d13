"""`decide`: one app's decision from what runs and its candidates (pins, cooldown, the running code rebuilt,
a digest to pin), and `explicit`: a person's rollback or pin."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from tagtrail.domain import provenance
from tagtrail.domain.humanize import soak as duration
from tagtrail.domain.policy._values import AppPolicy, Decision, Facts, Need, NeedCreated, Running
from tagtrail.domain.policy._walk import Context, candidates, first_acceptable
from tagtrail.domain.provenance import NeedDigest
from tagtrail.domain.reasons import Reason
from tagtrail.domain.scheme import Candidates, ParsedTag, Ranking, Scheme
from tagtrail.domain.scheme import ranking as order

_EARLIEST = datetime.min.replace(tzinfo=UTC)


def eligible_build(scheme: Scheme, branches: Sequence[str], tag: str | None) -> ParsedTag | None:
    """The tag read as a build of one of `branches`, or None: the one eligibility check (rollbacks, pins,
    hints and the dashboard ask it too)."""
    if not tag:
        return None
    parsed = scheme.parse(tag)
    if not isinstance(parsed, ParsedTag):
        return None
    tokens = {scheme.branch_token(b) for b in branches}
    return parsed if parsed.branch in tokens else None


def decide(app: str, scheme: Scheme, policy: AppPolicy, running: Running, facts: Facts) -> Decision | Need:
    """The decision for one app, or the fact it needs first."""
    parsed = scheme.parse(running.tag) if running.tag else None
    current = parsed if isinstance(parsed, ParsedTag) else None
    names = provenance.branch_names(scheme.branch_token, policy.branches)
    ctx = Context(app, running, current, facts, Counter(facts.ranking.ignored), names)
    if policy.pin is not None:
        return _with_digest(ctx, _pinned(ctx, scheme, policy.pin))
    ordered = candidates(ctx)
    if isinstance(ordered, NeedCreated):
        return ordered
    if not ordered:
        return ctx.decision(
            "hold", Reason.NO_ELIGIBLE_TAGS, f"no tag of {', '.join(policy.branches)} in the scheme"
        )
    behind = order.behind_count(ordered, ctx.current)
    chosen = first_acceptable(ctx, ordered, policy)
    if chosen is not None and not isinstance(chosen, ParsedTag):
        return chosen
    if chosen is None or chosen.tag == running.tag:
        moved = provenance.running_moved(ctx.current, running.digest, facts.digests, facts.claims)
        if isinstance(moved, NeedDigest):
            return moved
        if moved is not None:
            ctx.refuse(moved, first=True)  # what runs moved: the first thing to say
        return _with_digest(ctx, _staying(ctx, policy, chosen, behind))
    if (
        facts.automatic
        and facts.last_automatic is not None
        and facts.now - facts.last_automatic < policy.cooldown
    ):
        wait = int((policy.cooldown - (facts.now - facts.last_automatic)).total_seconds())
        why = f"{chosen.tag} waits {wait} s: one automatic deploy per cooldown"
        return ctx.decision("hold", Reason.COOLDOWN, why, chosen, behind)
    if policy.gate is not None and facts.evidence is not None and facts.evidence.since is not None:
        ran = duration(facts.now - facts.evidence.since)
        why = f"{chosen.tag} ran well in {policy.gate.source} for {ran}: promoted"
        return _with_digest(ctx, ctx.decision("deploy", Reason.PROMOTED, why, chosen, behind))
    if ctx.current is None:
        why = f"{running.tag or 'nothing'} is not a build of the scheme: deploying the newest eligible build"
        return _with_digest(ctx, ctx.decision("deploy", Reason.RUNNING_UNKNOWN, why, chosen, behind))
    if chosen.sha == ctx.current.sha or chosen.sha in facts.base_rebuilt:  # the running code, rebuilt
        reason = Reason.BASE_IMAGE if (on := chosen.sha in facts.base_rebuilt) else Reason.REBUILD
        why = f"{chosen.tag} rebuilds the code of {ctx.current.sha}{' on its moved base image' if on else ''}"
        return _with_digest(ctx, ctx.decision("deploy", reason, why, chosen, behind))
    why = f"{chosen.tag} is newer than {running.tag}"
    return _with_digest(ctx, ctx.decision("deploy", Reason.NEWER_BUILD, why, chosen, behind))


def explicit(
    app: str, scheme: Scheme, reason: Reason, tag: str, running: Running, digest: str | None
) -> Decision | NeedDigest:
    """A person's rollback or pin to `tag` (its eligibility was checked where they asked): deploy it,
    pinned by digest, unless the files already say exactly that."""
    parsed = scheme.parse(tag)
    current = scheme.parse(running.tag) if running.tag else None
    ctx = Context(
        app,
        running,
        current if isinstance(current, ParsedTag) else None,
        Facts(Ranking(scheme, (), ()), _EARLIEST, digests={tag: digest} if digest else {}),
        Counter(),
    )
    target = parsed if isinstance(parsed, ParsedTag) else None
    return _with_digest(ctx, ctx.decision("deploy", reason, f"{reason} to {tag}", target, tag=tag))


def _with_digest(ctx: Context, decision: Decision) -> Decision | NeedDigest:
    """A deploy needs its target's digest; one whose tag and digest the files already hold is nothing."""
    if decision.action != "deploy" or decision.target_tag is None:
        return decision
    if decision.digest is None:
        return NeedDigest(decision.target_tag)
    if decision.target_tag == ctx.running.tag and decision.digest == ctx.running.digest:
        return ctx.decision(
            "nothing",
            Reason.UP_TO_DATE,
            f"{decision.target_tag} is already deployed",
            decision.target,
            decision.behind,
            tag=decision.target_tag,
        )
    return decision


def _staying(ctx: Context, policy: AppPolicy, chosen: ParsedTag | None, behind: int | None) -> Decision:
    """What runs stays: say why (newer builds that a guard held back are worth saying), and pin its digest
    where the files do not."""
    running = ctx.running
    if ctx.gated.said:  # an environment's gate: what it said of the newest build it held back
        code, why = ctx.gated.said[0]
        return ctx.decision("hold", code, why, chosen, behind)
    if ctx.refusals:  # the newest refused candidate's reason; the others are counted in `ignored`
        first = ctx.refusals[0]
        return ctx.decision("hold", first.code, first.sentence, chosen, behind)
    if ctx.ignored["too-young"]:
        why = f"the newer builds are younger than the soak time {policy.min_age}"
        return ctx.decision("hold", Reason.TOO_YOUNG, why, chosen, behind)
    if ctx.ignored["ancestor-of-running"]:
        why = "the newer tags are of commits the running one already contains"
        return ctx.decision("hold", Reason.ANCESTOR_OF_RUNNING, why, chosen, behind)
    if ctx.gated.absent and policy.gate is not None:
        why = f"the newer builds have not run in {policy.gate.source} yet"
        return ctx.decision("hold", Reason.NOT_IN_SOURCE, why, chosen, behind)
    if chosen is None:
        return ctx.decision("nothing", Reason.UP_TO_DATE, f"nothing newer than {running.tag}", None, behind)
    if running.digest is None:
        # up to date by tag, but the files do not pin the digest: pin it (what runs is what was chosen)
        why = f"{chosen.tag} is current; pinning its digest"
        return ctx.decision("deploy", Reason.PIN_DIGEST, why, chosen, 0)
    return ctx.decision(
        "nothing", Reason.UP_TO_DATE, f"{running.tag} is the newest eligible build", chosen, 0
    )


def _pinned(ctx: Context, scheme: Scheme, pin: str) -> Decision:
    parsed = scheme.parse(pin)
    target = parsed if isinstance(parsed, ParsedTag) else None
    behind = order.behind_count(Candidates(ctx.facts.ranking, Counter()), ctx.current)
    if ctx.running.tag == pin:
        why = f"pinned at {pin}; `tagtrail unpin {ctx.app}` resumes updates"
        return ctx.decision("hold", Reason.PINNED, why, target, behind, tag=pin)
    why = f"pinned at {pin}, but the files say {ctx.running.tag or 'nothing'}"
    return ctx.decision("deploy", Reason.PINNED, why, target, behind, tag=pin)
