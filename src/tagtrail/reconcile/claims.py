"""Observe a tag's claims (DESIGN invariant 9): its commit on the remote deploy branch, its image's revision
label, its signature, what its workflow's Sigstore bundle proves, and whether the tag moved. Git runs in worker threads; the deploy branches are
fetched at most once per reconcile, and only when a candidate's commit is not already known there.

What cannot change is remembered by a long-lived reconciler (`Memory`): a commit found on a branch, an
image's label, a valid signature and a proven attestation by digest, and the first digest seen for each tag (a tag carries its
time and commit, so it never legitimately moves). Steady state (nothing new) costs no request and no fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import ImageRef, ManifestHead, Revision
from tagtrail.adapters.verify import verify_image
from tagtrail.adapters.verify.attached import Expected, verify_attached
from tagtrail.adapters.verify.cosign import SignatureRegistry
from tagtrail.domain.provenance import AttestationAnswer, CommitAnswer, CommitState, SignatureAnswer
from tagtrail.domain.reasons import Reason
from tagtrail.domain.scheme import Ranking, Scheme
from tagtrail.errors import GitError
from tagtrail.reconcile.rounds import Rounds

if TYPE_CHECKING:
    from tagtrail.adapters.verify.signatures import PublicKey

REMOTE = "origin"
RECHECK = timedelta(hours=1)  # at least this often, a long-lived reconciler HEADs each running tag
_BOUND = 20_000  # entries per memory; past it, the oldest half goes
Question = tuple[str, tuple[str, ...]]  # a short sha and the branches it must be on


class ClaimsRegistry(SignatureRegistry, Protocol):
    async def head(self, ref: ImageRef) -> ManifestHead: ...

    async def revision(self, ref: ImageRef) -> Revision: ...


def _bounded(table: dict[object, object]) -> None:
    if len(table) > _BOUND:
        for key in list(table)[: _BOUND // 2]:
            del table[key]


@dataclass
class Memory:
    """What a long-lived reconciler learned that cannot change, across reconciles."""

    on_branch: dict[str, CommitAnswer] = field(default_factory=dict)  # short sha → found on a branch
    revisions: dict[str, Revision] = field(default_factory=dict)  # digest → its revision (and base) read
    signed: dict[tuple[str, str], SignatureAnswer] = field(
        default_factory=dict
    )  # (digest, keys' bytes) → valid
    attested: dict[tuple[str, str], AttestationAnswer] = field(
        default_factory=dict
    )  # (digest, what was expected) → what its bundles prove, or why they prove nothing
    seen: dict[str, dict[str, str]] = field(default_factory=dict)  # repository → tag → first digest
    lists: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # repository → (tag list hash, when)
    # repository → ((scheme, branches), its last tag list, their ranking): an unchanged list is not read again
    rankings: dict[str, tuple[tuple[Scheme, tuple[str, ...]], Sequence[str], Ranking]] = field(
        default_factory=dict
    )

    # the source repository's remote, looked up once (a git process on a push's path): a remote added or
    # removed is seen by the next reconciler (a config reload or a restart)
    remote: tuple[str | None] | None = None

    def saw(self, repository: str, tag: str, digest: str) -> None:
        tags = self.seen.setdefault(repository, {})
        tags.setdefault(tag, digest)
        _bounded(tags)  # type: ignore[arg-type]

    def recorded(self, repository: str) -> dict[str, str]:
        return dict(self.seen.get(repository, {}))

    def remember(self, references: dict[str, str]) -> None:
        """Digests recorded elsewhere (the decision log), as "registry/repo:tag" → digest."""
        for reference, digest in references.items():
            repository, _, tag = reference.rpartition(":")
            if repository and tag:
                self.saw(repository, tag, digest)


class Provenance:
    """The claims facts for one reconcile."""

    def __init__(
        self,
        client: ClaimsRegistry,
        source: GitRepo | None,
        memory: Memory,
        branches: Sequence[str] = (),
        rounds: Rounds | None = None,
    ) -> None:
        self.client = client
        self.source = source
        self.memory = memory
        self.rounds = rounds or Rounds()
        self.branches = list(dict.fromkeys(branches))  # every deploy branch: one fetch serves them all
        self._fetched: str | None = None  # None: not yet; "" fetched; else why the fetch failed
        self._recheck: dict[str, bool] = {}
        self._answered: dict[Question, CommitAnswer] = {}  # this reconcile's answers
        # this reconcile's image reads, by (repository, tag, digest asked with): one read each, started by
        # `read_ahead` or the first `revision`; `read` holds (repository, digest) of those that read an image
        self._reads: dict[tuple[str, str, str | None], asyncio.Task[tuple[str, str | None]]] = {}
        self.read: set[tuple[str, str]] = set()

    def recheck(self, repository: str, tags: Sequence[str], now: datetime) -> bool:
        """Whether the running tag's digest is worth a HEAD: the first look at this repository, its tag
        list changed since the last reconcile, or the last look is RECHECK old (a re-push of the running tag
        alone changes no tag list). Decided once per reconcile, so a retry decides alike."""
        if repository not in self._recheck:
            fingerprint = hash(tuple(tags))
            last = self.memory.lists.get(repository)
            due = last is None or last[0] != fingerprint or now - last[1] >= RECHECK
            self._recheck[repository] = due
            if due:
                self.memory.lists[repository] = (fingerprint, now)
        return self._recheck[repository]

    async def commits(self, asked: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, CommitAnswer]:
        """Each short sha resolved on its deploy branches; the branches fetched once if one is not found.
        The apps of a reconcile ask together (`Rounds`): a few git processes for all of them."""
        source = self.source
        wanted = list(dict(asked).items())
        if source is None:
            return {}
        answers = await self.rounds.ask(self._answer, wanted)
        if self._fetched:
            note = f" (fetching {REMOTE} failed: {self._fetched})"
            for key, answer in answers.items():
                if answer.state is not CommitState.ON_BRANCH:
                    answers[key] = CommitAnswer(answer.state, answer.full, answer.branch + note)
        return {sha: answer for (sha, _), answer in answers.items()}

    async def _answer(self, batch: list[Question]) -> dict[Question, CommitAnswer]:
        source = self.source
        if source is None:  # asked only with a source
            raise AssertionError("a commit was asked about without a source repository")  # pragma: no cover
        new = [key for key in batch if key not in self._answered]
        if new:
            answers = await self._batch(source, new)
            self._answered.update(answers)
        return {key: self._answered[key] for key in batch}

    async def _batch(self, source: GitRepo, batch: list[Question]) -> dict[Question, CommitAnswer]:
        if self.memory.remote is None:  # asked once per reconciler, not once per app or per push
            self.memory.remote = (await asyncio.to_thread(source.remote_url, REMOTE),)
        remote = self.memory.remote[0]
        answers = await asyncio.to_thread(self._look, source, batch, remote is not None)
        pending = [key for key in batch if answers[key].state is not CommitState.ON_BRANCH]
        if pending and remote is not None and self._fetched is None:
            self._fetched = await asyncio.to_thread(self._fetch, source, dict(batch))
            answers.update(await asyncio.to_thread(self._look, source, pending, True))
        return answers

    def _fetch(self, source: GitRepo, wanted: dict[str, tuple[str, ...]]) -> str:
        branches = list(dict.fromkeys([*self.branches, *(b for bs in wanted.values() for b in bs)]))
        try:
            source.fetch_branches(REMOTE, branches)
        except GitError as exc:
            return str(exc)
        return ""

    def _look(self, source: GitRepo, batch: list[Question], remote: bool) -> dict[Question, CommitAnswer]:
        answers = {key: known for key in batch if (known := self.memory.on_branch.get(key[0])) is not None}
        asked = [key for key in batch if key not in answers]
        named = source.commits_named_many(sha for sha, _ in asked)  # one git process
        answers.update(_resolve(source, [(key, named[key[0]]) for key in asked], remote))
        for (sha, _), answer in answers.items():
            if answer.state is CommitState.ON_BRANCH:
                self.memory.on_branch[sha] = answer
                _bounded(self.memory.on_branch)  # type: ignore[arg-type]
        return answers

    async def revision(self, ref: ImageRef, tag: str, digest: str | None) -> tuple[str, str | None]:
        """(digest, revision) of the image `tag` names: one HEAD when this tag's digest was seen before and
        its revision is remembered, else the image read once (at the tag, which gives the digest): its
        manifest, and its config only where the manifest carries no revision annotation.
        A digest seen without its label (a new process: the decision log keeps digests, not labels) is not
        worth the HEAD, which would be followed by the read all the same. Asked twice in one reconcile (or
        after `read_ahead`), it is read once."""
        return await self._reading(ref, tag, digest)

    def read_ahead(self, ref: ImageRef, tag: str, digest: str | None) -> None:
        """Start the read `revision` is expected to be asked for next, while git answers what the policy
        asks first; one nobody asks for is let go by `settle` (its error too: asked for, it is raised)."""
        self._reading(ref, tag, digest)

    def _reading(self, ref: ImageRef, tag: str, digest: str | None) -> asyncio.Task[tuple[str, str | None]]:
        key = (ref.name, tag, digest)
        task = self._reads.get(key)
        if task is None:
            task = self._reads[key] = asyncio.ensure_future(self._revision(ref, tag, digest))
            task.add_done_callback(_retrieved)
        return task

    async def settle(self) -> None:
        """Reads started ahead that nobody awaited (a candidate refused by git after all): let them go."""
        for task in self._reads.values():
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _revision(self, ref: ImageRef, tag: str, digest: str | None) -> tuple[str, str | None]:
        seen = self.memory.seen.get(ref.name, {}).get(tag)
        if digest is None and seen is not None and seen in self.memory.revisions:
            digest = (await self.client.head(ref.with_tag(tag))).digest
        if digest is not None and digest in self.memory.revisions:
            return digest, self.memory.revisions[digest].commit
        said = await self.client.revision(ref.with_digest(digest) if digest else ref.with_tag(tag))
        self.read.add((ref.name, said.digest))
        self.memory.revisions[said.digest] = said
        _bounded(self.memory.revisions)  # type: ignore[arg-type]
        return said.digest, said.commit

    async def signature(
        self, ref: ImageRef, digest: str, keys: list[PublicKey], keys_id: str
    ) -> SignatureAnswer:
        """Whether `digest` is signed by one of `keys`; a valid answer is remembered for the digest."""
        known = self.memory.signed.get((digest, keys_id))
        if known is not None:
            return known
        answer = (await verify_image(self.client, ref, digest, keys)).answer
        if answer.valid:
            self.memory.signed[(digest, keys_id)] = answer
            _bounded(self.memory.signed)  # type: ignore[arg-type]
        return answer

    async def attestation(self, ref: ImageRef, digest: str, expected: Expected) -> AttestationAnswer:
        """What a bundle from the configured workflow proves about `digest`, remembered for the digest: a
        new build costs one referrers read and its bundles once, then nothing again. Only "no bundle yet"
        is asked again at the next reconcile: the attestation step runs after the push, and lands later."""
        known = self.memory.attested.get((digest, expected.key))
        if known is not None:
            return known
        answer = (
            await verify_attached(
                self.client, ref, digest, expected.root, expected.identity, expected.require
            )
        ).answer
        if answer.refused is not Reason.NOT_ATTESTED:
            self.memory.attested[(digest, expected.key)] = answer
            _bounded(self.memory.attested)  # type: ignore[arg-type]
        return answer


def _resolve(
    source: GitRepo, asked: list[tuple[Question, list[str]]], remote: bool
) -> dict[Question, CommitAnswer]:
    """Where the commits each short sha names stand on its deploy branches: the remote-tracking branches
    (the local ones only where the repository has no remote at all), tried in order, one git process per
    branch for every sha that branch is tried for."""

    def refs(key: Question) -> list[str]:
        return [f"refs/remotes/{REMOTE}/{b}" if remote else f"refs/heads/{b}" for b in key[1]]

    def shown(key: Question) -> str:
        return ", ".join(r.removeprefix("refs/remotes/").removeprefix("refs/heads/") for r in refs(key))

    answers: dict[Question, CommitAnswer] = {}
    for key, found in asked:
        if len(found) > 1:
            answers[key] = CommitAnswer(CommitState.AMBIGUOUS, None, shown(key))
        elif not found:
            answers[key] = CommitAnswer(CommitState.MISSING, None, shown(key))
    commit = dict(asked)
    open_ = [key for key, _ in asked if key not in answers]
    for depth in itertools.count():
        if not open_:
            break
        tried: dict[str, list[Question]] = {}
        for key in open_:
            if depth < len(refs(key)):
                tried.setdefault(refs(key)[depth], []).append(key)
            else:
                answers[key] = CommitAnswer(CommitState.OTHER_BRANCH, commit[key][0], shown(key))
        for ref, keys in tried.items():
            reached = source.reached(ref, (commit[key][0] for key in keys))
            for key in keys:
                if commit[key][0] in reached:
                    answers[key] = CommitAnswer(
                        CommitState.ON_BRANCH, commit[key][0], ref.removeprefix("refs/remotes/")
                    )
        open_ = [key for key in open_ if key not in answers]
    return answers


def _retrieved(task: asyncio.Task[tuple[str, str | None]]) -> None:
    """A read's error is raised to whoever awaits it; one nobody awaits is not reported as lost."""
    if not task.cancelled():
        task.exception()
