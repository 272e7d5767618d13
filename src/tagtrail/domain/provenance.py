"""A tag's claims, checked and not believed (DESIGN invariant 9). Pure: the facts come from the reconciler.

A tag says which branch and commit built it and when. Before a candidate is deployed:
- it is not dated in the future (more than `max_skew` ahead of now);
- where the source repository is at hand, its short sha names exactly one commit, and that commit is
  reachable from the remote deploy branch (fetched, not the local branch);
- the image's `org.opencontainers.image.revision` label, where it has one, is that commit;
- its tag points at the digest recorded for it before, if any (a tag carries its time and commit, so it
  never legitimately moves);
- where keys are configured, a signature by one of them covers exactly its digest;
- where a GitHub workflow is configured (deploy.verify.github), a Sigstore bundle made in that workflow's run
  covers its digest, and the run's commit and ref are the commit the tag names and its deploy branch.

Each refusal has its own code; the policy skips a refused candidate and considers the next. What it cannot
know yet, it asks for (NeedCommit, NeedRevision, NeedSignature, NeedAttestation), like the policy's other
needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from tagtrail.domain.reasons import Reason, Refused
from tagtrail.domain.scheme import ParsedTag

COMMIT_BATCH = 16  # commit questions asked in one round (each costs a few local git commands)
COMMIT_WINDOW = 4 * COMMIT_BATCH  # candidates looked at for them (of thousands, where builds share commits)


class CommitState(StrEnum):
    ON_BRANCH = "on-branch"
    AMBIGUOUS = "ambiguous"
    MISSING = "missing"
    OTHER_BRANCH = "other-branch"


@dataclass(frozen=True)
class CommitAnswer:
    """What the source repository says about a short sha, after fetching the deploy branch."""

    state: CommitState
    full: str | None = None  # the one commit it names (on the branch or not)
    branch: str = ""  # the remote branch it was looked for on


@dataclass(frozen=True)
class SignatureAnswer:
    """Whether a signature by a configured key covers a digest; `detail` says what was found."""

    valid: bool
    detail: str
    signed: bool = True  # False: no signature at all (unsigned), True: signatures, none valid


@dataclass(frozen=True)
class AttestationAnswer:
    """What a Sigstore bundle attached to a digest proves, or why none proves anything (`refused`: the
    code and `detail` the sentence). The ref and commits are the run's, checked against the tag here."""

    refused: Refused | None
    detail: str
    ref: str = ""
    commits: tuple[str, ...] = ()  # the certificate's source commit, and the SLSA predicate's


@dataclass(frozen=True)
class NeedDigest:
    """The digest the registry holds for this tag (every deploy pins it, and the image checks read it)."""

    tag: str


@dataclass(frozen=True)
class NeedCommit:
    """Resolve each short sha on its deploy branches (sha, branch names): exactly one commit, on it?"""

    shas: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class NeedRevision:
    """The revision label (None: it has none) of the image this tag names, and its digest when not known
    yet: reading the image by tag gives both, so a first look costs no HEAD."""

    tag: str
    digest: str | None


@dataclass(frozen=True)
class NeedSignature:
    """Whether the image at this digest is signed by one of the configured keys."""

    tag: str
    digest: str


@dataclass(frozen=True)
class NeedAttestation:
    """What a bundle from the configured workflow proves about the image at this digest."""

    tag: str
    digest: str


@dataclass(frozen=True)
class Claims:
    """The facts about claims known so far. `commits` is None where no source repository is at hand and
    `signatures` None where no keys are configured (those checks are then not made)."""

    max_skew: timedelta = timedelta(minutes=5)
    commits: Mapping[str, CommitAnswer] | None = None
    revisions: Mapping[str, str | None] | None = None  # digest → label; None: labels not read
    signatures: Mapping[str, SignatureAnswer] | None = None  # digest → answer
    recorded: Mapping[str, str] = field(default_factory=dict)  # tag → digest seen for it before
    recheck_running: bool = False  # compare the running tag's digest with the registry's
    attestations: Mapping[str, AttestationAnswer] | None = None  # digest → answer; None: not configured
    attested_refs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # branch token → refs


@dataclass(frozen=True)
class Refusal:
    """One candidate refused, and why (told once per candidate by `tagtrail serve`)."""

    tag: str
    code: Refused
    sentence: str


def screen(
    candidate: ParsedTag, branch_names: Mapping[str, tuple[str, ...]], claims: Claims, now: datetime
) -> Refusal | NeedCommit | None:
    """The claims that need no image: its date and its commit. None: believed so far."""
    if candidate.instants and min(candidate.instants) > now + claims.max_skew:
        when = min(candidate.instants).isoformat()
        return Refusal(
            candidate.tag, Reason.DATED_IN_THE_FUTURE, f"{candidate.tag} is dated in the future ({when})"
        )
    if claims.commits is None or not candidate.sha:
        return None
    answer = claims.commits.get(candidate.sha)
    if answer is None:
        return NeedCommit(((candidate.sha, branch_names.get(candidate.branch, ())),))
    return _commit_refusal(candidate, answer)


def _commit_refusal(candidate: ParsedTag, answer: CommitAnswer) -> Refusal | None:
    where = answer.branch or "the deploy branch"
    if answer.state is CommitState.ON_BRANCH:
        return None
    if answer.state is CommitState.AMBIGUOUS:
        why = f"{candidate.tag}: the short sha {candidate.sha} names more than one commit"
        return Refusal(candidate.tag, Reason.COMMIT_AMBIGUOUS, why)
    if answer.state is CommitState.MISSING:
        why = (
            f"{candidate.tag}: no commit {candidate.sha} exists in the source repository (looked on {where})"
        )
        return Refusal(candidate.tag, Reason.COMMIT_UNKNOWN, why)
    why = f"{candidate.tag}: commit {candidate.sha} is not on {where}"
    return Refusal(candidate.tag, Reason.COMMIT_NOT_ON_BRANCH, why)


def examine(
    candidate: ParsedTag, digest: str, claims: Claims
) -> Refusal | NeedRevision | NeedSignature | NeedAttestation | None:
    """The claims about the image the tag names now (the winner only): the tag has not moved, its
    revision label agrees, it is signed where keys are configured, and attested where a workflow is."""
    tag = candidate.tag
    recorded = claims.recorded.get(tag)
    if recorded is not None and recorded != digest:
        return moved(tag, recorded, digest)
    if claims.revisions is not None and digest not in claims.revisions:
        return NeedRevision(tag, digest)
    label = claims.revisions.get(digest) if claims.revisions is not None else None
    if label is not None and candidate.sha:
        known = claims.commits.get(candidate.sha) if claims.commits is not None else None
        full = known.full if known is not None else None
        agrees = label == full if full else label.lower().startswith(candidate.sha.lower())
        if not agrees:
            why = (
                f"{tag}: the image says it was built from {label[:40]}, the tag says {full or candidate.sha}"
            )
            return Refusal(tag, Reason.REVISION_MISMATCH, why)
    if claims.signatures is not None:
        answer = claims.signatures.get(digest)
        if answer is None:
            return NeedSignature(tag, digest)
        if not answer.valid:
            code: Refused = Reason.SIGNATURE_INVALID if answer.signed else Reason.UNSIGNED
            return Refusal(tag, code, f"{tag}: {answer.detail}")
    if claims.attestations is None:
        return None
    attested = claims.attestations.get(digest)
    if attested is None:
        return NeedAttestation(tag, digest)
    return attested_refusal(candidate, attested, claims)


def attested_refusal(candidate: ParsedTag, answer: AttestationAnswer, claims: Claims) -> Refusal | None:
    """What the workflow's bundle proves, held against what the tag claims: the run's ref is the deploy
    branch the tag names, and its commit (the certificate's and the provenance's) the tag's commit
    (DESIGN invariant 14: where a workflow attests a build, its identity outranks what the tag says)."""
    tag = candidate.tag
    if answer.refused is not None:
        return Refusal(tag, answer.refused, f"{tag}: {answer.detail}")
    refs = claims.attested_refs.get(candidate.branch, ())
    if answer.ref not in refs:
        wanted = " or ".join(refs) or f"a deploy branch named {candidate.branch}"
        why = f"{tag}: attested by a run of {answer.ref or 'no ref'}, not {wanted}"
        return Refusal(tag, Reason.ATTESTED_REF_MISMATCH, why)
    if not candidate.sha:
        return None
    known = claims.commits.get(candidate.sha) if claims.commits is not None else None
    full = known.full if known is not None else None
    for commit in answer.commits:
        if not (commit == full if full else commit.lower().startswith(candidate.sha.lower())):
            why = f"{tag}: attested as built from {commit[:40]}, the tag says {full or candidate.sha}"
            return Refusal(tag, Reason.ATTESTED_COMMIT_MISMATCH, why)
    return None


def moved(tag: str, recorded: str, now: str) -> Refusal:
    why = f"{tag} now points at {now[:19]}…, not {recorded[:19]}… as before (re-pushed or tampered): not followed"
    return Refusal(tag, Reason.TAG_MOVED, why)


def commit_needs(
    candidates: Iterable[ParsedTag], branches_of: Mapping[str, tuple[str, ...]], claims: Claims
) -> NeedCommit:
    """The commit questions the next candidates may raise, asked at once (one fetch answers them all). The
    first round asks at most COMMIT_BATCH, so that a first deploy over a thousand builds neither resolves
    nor reads them all; a later round (the first answers refused the newest) asks every one left, so that a
    policy walking a thousand refused builds does so in two rounds, not one per COMMIT_BATCH."""
    known = claims.commits or {}
    bounded = not known
    asked: dict[str, tuple[str, ...]] = {}
    for c in itertools.islice(candidates, COMMIT_WINDOW) if bounded else candidates:
        if not c.sha or c.sha in known:
            continue
        if bounded and c.sha not in asked and len(asked) == COMMIT_BATCH:
            break
        asked[c.sha] = branches_of.get(c.branch, ())
    return NeedCommit(tuple(asked.items()))


def winner(
    candidate: ParsedTag, digests: Mapping[str, str], claims: Claims
) -> Refusal | NeedDigest | NeedRevision | NeedSignature | NeedAttestation | None:
    """The image checks of the candidate about to be chosen, where the reconciler makes them: its digest
    first (which every deploy needs anyway), then the image at that digest."""
    if (
        claims.revisions is None
        and claims.signatures is None
        and claims.attestations is None
        and not claims.recorded
    ):
        return None
    digest = digests.get(candidate.tag)
    if digest is None:
        return (
            NeedRevision(candidate.tag, None) if claims.revisions is not None else NeedDigest(candidate.tag)
        )
    return examine(candidate, digest, claims)


def running_moved(
    running: ParsedTag | None, pinned: str | None, digests: Mapping[str, str], claims: Claims
) -> Refusal | NeedDigest | None:
    """Whether the running tag (a build of the scheme) now points elsewhere than the files pin. Asked only
    when the reconciler says a request is worth it: the tag list changed, or it has not looked before."""
    if not (claims.recheck_running and running is not None and pinned):
        return None
    now = digests.get(running.tag)
    if now is None:
        return NeedDigest(running.tag)
    return None if now == pinned else moved(running.tag, pinned, now)


def attested_refs(
    token: Callable[[str], str], branches: tuple[str, ...], ref: str | None
) -> dict[str, tuple[str, ...]]:
    """Branch token in tags → the refs a run attesting such a tag may be of: the configured ref, else the
    deploy branches the token stands for."""
    return {
        name: (ref,) if ref else tuple(f"refs/heads/{b}" for b in named)
        for name, named in branch_names(token, branches).items()
    }


def branch_names(token: Callable[[str], str], branches: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Branch token in tags → the deploy branches it stands for (`feature/x` and `feature-x` share one)."""
    names: dict[str, tuple[str, ...]] = {}
    for branch in branches:
        names[token(branch)] = (*names.get(token(branch), ()), branch)
    return names
