"""Decide: every app's decision, the policy asked again with each fact it needs until it decides.

A registry that cannot be read for an app makes that app hold with the error as its reason, marked
transient or not: a failed read never leads to a write (DESIGN invariant 4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tagtrail.adapters.refs import Matcher
from tagtrail.adapters.registry import ImageRef, Revision
from tagtrail.adapters.registry.stats import counting
from tagtrail.adapters.verify import fingerprint, load_keys
from tagtrail.adapters.verify.attached import Expected, expected
from tagtrail.config import Config
from tagtrail.config.environments import lane_of
from tagtrail.domain.policy import (
    AppPolicy,
    Decision,
    Evidence,
    Facts,
    Gate,
    Need,
    NeedAncestry,
    NeedCreated,
    NeedEvidence,
    Reason,
    decide,
)
from tagtrail.domain.provenance import (
    Claims,
    CommitState,
    NeedAttestation,
    NeedCommit,
    NeedRevision,
    NeedSignature,
    attested_refs,
)
from tagtrail.domain.scheme import ParsedTag
from tagtrail.errors import RegistryError
from tagtrail.reconcile.ahead import ahead
from tagtrail.reconcile.lanes import promotion, soak_left
from tagtrail.reconcile.observe import Observer
from tagtrail.reconcile.outcome import Planned
from tagtrail.reconcile.rebuilt import same_code
from tagtrail.targets.base import AppState, Proof

if TYPE_CHECKING:
    from tagtrail.adapters.verify.signatures import PublicKey

# Each round answers one need; a tie, an ancestry question and a digest take three, the claims (commit,
# label, signature, the running tag's digest) four more. More means a registry changing under us.
MAX_ROUNDS = 12


def app_policy(config: Config, app: str) -> AppPolicy:
    lane = lane_of(config)
    gate = Gate(lane.take_from, lane.soak, lane.approval == "manual") if lane and lane.take_from else None
    return AppPolicy(
        tuple(config.deploy.branches_of(app)),
        config.deploy.min_age_of(app),
        config.deploy.cooldown,
        config.deploy.pins.get(app),
        gate,
    )


@dataclass(frozen=True)
class Round:
    """What every app's decision in one evaluation shares."""

    config: Config
    matcher: Matcher
    observer: Observer
    now: datetime
    automatic: bool
    last_automatic: Mapping[str, datetime]
    prove: bool = False  # a deploy (not a plan): read each digest to write back by digest first
    base: Path = Path()  # tagtrail.yaml's folder: where file: keys are found
    keys: dict[tuple[str, ...], tuple[list[PublicKey], str]] = field(default_factory=dict)
    attesting: dict[object, Expected] = field(default_factory=dict)
    bases_moved: frozenset[str] = frozenset()  # apps whose running build's base image has moved
    # asked of an app not among them whose winner may be its running code rebuilt: is it on another base?
    # (with the winner's own read, where the revision check made it)
    base_moved: Callable[[AppState, Revision | None], Awaitable[bool]] | None = None
    # an environment after another: what that one says of an app (its gate's evidence); and the apps a
    # person promotes now (a manual gate opens for them)
    evidence: Callable[[str], Awaitable[Evidence]] | None = None
    approved: frozenset[str] = frozenset()

    async def evidence_of(self, app: str) -> Evidence:
        """The gate's evidence for `app`; none known (the gate stays shut) without the environment before."""
        return await self.evidence(app) if self.evidence is not None else Evidence(None, None)

    def keys_of(self, app: str) -> tuple[list[PublicKey], str] | None:
        """The keys an app's images must be signed with (read once per evaluation) and their fingerprint,
        or None."""
        verify = self.config.deploy.verify_of(app)
        if verify is None or not verify.keys:
            return None
        specs = tuple(verify.keys)
        if specs not in self.keys:
            keys = load_keys(list(specs), self.base)
            self.keys[specs] = keys, fingerprint(keys)
        return self.keys[specs]

    def attesting_of(self, app: str) -> Expected | None:
        """What an app's images' Sigstore bundles must prove (deploy.verify.github), loaded once per
        evaluation, or None."""
        verify = self.config.deploy.verify_of(app)
        if verify is None or verify.github is None:
            return None
        key = (verify.github, verify.require)
        if key not in self.attesting:
            source = self.observer.source
            remote = (lambda: source.remote_url("origin")) if source is not None else (lambda: None)
            self.attesting[key] = expected(verify.github, verify.require, self.base, remote)
        return self.attesting[key]


async def evaluate(run: Round, states: Mapping[str, AppState]) -> list[Planned]:
    """The decision for every app in `states`, with what the registry said about its target."""
    run.observer.rounds.expect(len(states))  # their git questions answered together, a round at a time
    planned = list(await asyncio.gather(*(_app(run, state) for state in states.values())))
    shas = [p.decision.target.sha for p in planned if p.decision.target is not None]
    full = await run.observer.built_from(shas)
    for item in planned:
        target = item.decision.target
        item.built_from = full.get(target.sha) if target is not None and target.sha else None
    return planned


async def _app(run: Round, state: AppState) -> Planned:
    started = time.monotonic()
    repository = run.matcher.canonical(state.app)
    with counting() as requests:
        try:
            planned = await _decide(run, state, repository)
        except RegistryError as exc:
            hold = Decision(state.app, "hold", Reason.REGISTRY_ERROR, str(exc), state.running)
            planned = Planned(hold, repository, error=str(exc), transient=exc.transient)
        finally:
            run.observer.rounds.leave()
    planned.requests = requests[0]
    planned.duration_ms = int((time.monotonic() - started) * 1000)
    return planned


async def _decide(run: Round, state: AppState, repository: str) -> Planned:
    config, observer = run.config, run.observer
    scheme = config.tag_scheme
    policy = app_policy(config, state.app)
    ref = ImageRef.parse(repository)
    tags = await observer.tags(ref)
    provenance, keys, attesting = observer.provenance, run.keys_of(state.app), run.attesting_of(state.app)
    if state.running.tag and state.running.digest:  # what the files pin is what was recorded for it
        provenance.memory.saw(ref.name, state.running.tag, state.running.digest)
    claims = Claims(
        config.deploy.max_skew,
        commits={} if observer.source is not None else None,
        revisions={},
        signatures={} if keys else None,
        recorded=provenance.memory.recorded(ref.name),
        recheck_running=provenance.recheck(ref.name, tags, run.now),
        attestations={} if attesting else None,
        attested_refs=attested_refs(
            scheme.branch_token, policy.branches, attesting.ref if attesting else None
        ),
    )
    ranking = observer.ranking(ref, scheme, tags, policy.branches)
    if observer.source is not None and state.running.tag:  # the ancestry walk starts from what runs
        read = ranking.parse(state.running.tag)
        observer.source.expect([read.sha] if isinstance(read, ParsedTag) and read.sha else [])
    rebuilt = frozenset[str]()
    if state.app in run.bases_moved:  # which newer builds are the running code on its moved base
        running = scheme.parse(state.running.tag) if state.running.tag else None
        current = running if isinstance(running, ParsedTag) else None
        rebuilt = await same_code(observer.source, config, state.app, current, ranking)
    facts = Facts(
        ranking,
        run.now,
        ancestry={} if observer.source is not None else None,
        last_automatic=run.last_automatic.get(state.app),
        automatic=run.automatic,
        total_tags=len(tags),
        claims=claims,
        base_rebuilt=rebuilt,
        approved=state.app in run.approved,
    )
    # An image's questions (label, signature, attestation) are asked once per candidate the walk reaches:
    # bounded by the tags, not by MAX_ROUNDS, so that builds pushed unsigned or unattested are each refused
    # with their reason however many there are, and the newest good one still chosen.
    rounds, examined = 0, 0
    while rounds < MAX_ROUNDS and examined <= 3 * len(tags):
        result = decide(state.app, scheme, policy, state.running, facts)
        if isinstance(result, Decision):
            rounds += 1
            if rebuilt := await _rebuilt_on_moved_base(run, state, result, facts):
                facts = replace(facts, base_rebuilt=rebuilt)  # the same decision, its reason base-image
                continue
            if run.prove and result.action == "deploy" and result.digest is not None:
                await observer.prove(ref, result.digest)
            proof = _proof(result, facts, provenance.memory.revisions)
            planned = Planned(
                result, repository, tags_seen=len(tags), created=dict(facts.created), proof=proof
            )
            planned.promoted = promotion(policy.gate, facts, result)
            planned.soak_left = soak_left(policy.gate, facts, result)
            return planned
        if isinstance(result, NeedRevision | NeedSignature | NeedAttestation):
            examined += 1
        else:
            rounds += 1
        if isinstance(result, NeedEvidence):  # the environment before: read once per evaluation
            facts = replace(facts, evidence=await run.evidence_of(state.app))
            continue
        # git asked: the image read starts beside it, for a tag list new since the last look (a push; an
        # unchanged list's candidates were judged before, and one git refuses would be read on every poll)
        if isinstance(result, NeedCommit | NeedAncestry) and facts.claims.recheck_running:
            hoped = ahead(state.app, scheme, policy, state.running, facts, result)
            if hoped is not None:
                observer.provenance.read_ahead(ref, hoped.tag, hoped.digest)
        facts = await answer(observer, ref, facts, result, keys, attesting)
    raise RegistryError(ref.registry, ref.repository, "the order of its newest tags could not be settled")


def _proof(decision: Decision, facts: Facts, revisions: Mapping[str, Revision]) -> Proof | None:
    """What the claims found of a build to deploy, as its pull request shows it: only what was checked."""
    chosen, claims, digest = decision.target, facts.claims, decision.digest
    if decision.action != "deploy" or chosen is None or digest is None:
        return None
    found = (claims.commits or {}).get(chosen.sha) if chosen.sha else None
    signed = (claims.signatures or {}).get(digest)
    attested = (claims.attestations or {}).get(digest)
    read = revisions.get(digest)
    return Proof(
        commit=found.full if found is not None and found.state is CommitState.ON_BRANCH else None,
        branch=found.branch if found is not None else None,
        signature=signed.detail if signed is not None and signed.valid else None,
        attestation=attested.detail if attested is not None and attested.refused is None else None,
        base=read.base if read is not None else None,
        label=(claims.revisions or {}).get(digest) is not None,
    )


async def _rebuilt_on_moved_base(
    run: Round, state: AppState, decision: Decision, facts: Facts
) -> frozenset[str]:
    """For a deploy of what may be the running code rebuilt, where no base watch said its base moved: the
    shas of the running build and of the winner when the winner is the running code (git, only for a newer
    commit, asked with the other apps') and, only then, the two builds record different bases (the winner's
    from its own read, the running image's read once per digest). A winner whose read says it records no
    base is no base-image rebuild whatever its code: nothing is asked of git or the registry."""
    running, chosen = decision.running_parsed, decision.target
    read = run.observer.provenance.memory.revisions.get(decision.digest) if decision.digest else None
    if (
        run.base_moved is None
        or facts.base_rebuilt
        or decision.action != "deploy"
        or decision.reason not in (Reason.NEWER_BUILD, Reason.REBUILD)
        or running is None
        or chosen is None
        or not running.sha
        or not chosen.sha
        or (read is not None and read.base is None)
    ):
        return frozenset()
    if chosen.sha != running.sha and not await run.observer.same_inputs(
        run.config, state.app, running.sha, chosen.sha
    ):
        return frozenset()
    return frozenset({running.sha, chosen.sha}) if await run.base_moved(state, read) else frozenset()


async def answer(
    observer: Observer,
    ref: ImageRef,
    facts: Facts,
    need: Need,
    keys: tuple[list[PublicKey], str] | None = None,
    attesting: Expected | None = None,
) -> Facts:
    """Facts with the answer to what the policy asked."""
    if isinstance(need, NeedCreated):
        created = await observer.created(ref, need.tags, facts.ranking.scheme)
        return replace(facts, created={**facts.created, **created})
    if isinstance(need, NeedAncestry):
        found = await observer.ancestry(need.pairs)
        return replace(facts, ancestry={**(facts.ancestry or {}), **found})
    if isinstance(need, NeedAttestation):
        if attesting is None:  # asked only where a workflow is configured
            raise AssertionError(
                "an attestation was asked for without deploy.verify.github"
            )  # pragma: no cover
        verdict = await observer.provenance.attestation(ref, need.digest, attesting)
        attestations = {**(facts.claims.attestations or {}), need.digest: verdict}
        return replace(facts, claims=replace(facts.claims, attestations=attestations))
    if isinstance(need, NeedCommit | NeedRevision | NeedSignature):
        return await _claims(observer, ref, facts, need, keys)
    if isinstance(need, NeedEvidence):  # answered by the round (`Round.evidence_of`), never here
        raise TypeError("the gate's evidence was asked of the registry")  # pragma: no cover
    digest = await observer.digest(ref, need.tag)
    observer.provenance.memory.saw(ref.name, need.tag, digest)
    return replace(facts, digests={**facts.digests, need.tag: digest})


async def _claims(
    observer: Observer,
    ref: ImageRef,
    facts: Facts,
    need: NeedCommit | NeedRevision | NeedSignature,
    keys: tuple[list[PublicKey], str] | None,
) -> Facts:
    provenance, claims = observer.provenance, facts.claims
    if isinstance(need, NeedCommit):
        found = await provenance.commits(need.shas)
        return replace(facts, claims=replace(claims, commits={**(claims.commits or {}), **found}))
    if isinstance(need, NeedRevision):
        digest, label = await provenance.revision(ref, need.tag, need.digest)
        if (ref.name, digest) in provenance.read:  # read now, by tag or digest, its bytes hashed: proven
            observer.proven(ref, digest)
        provenance.memory.saw(ref.name, need.tag, digest)
        revisions = {**(claims.revisions or {}), digest: label}
        return replace(
            facts, digests={**facts.digests, need.tag: digest}, claims=replace(claims, revisions=revisions)
        )
    if keys is None:  # asked only where keys are configured
        raise AssertionError("a signature was asked for without keys")  # pragma: no cover
    verdict = await provenance.signature(ref, need.digest, *keys)
    return replace(
        facts, claims=replace(claims, signatures={**(claims.signatures or {}), need.digest: verdict})
    )
