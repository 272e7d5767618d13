"""Observe: the facts the policy asks for, fetched once per run. Tag lists and digests from the registry,
`created` times only where tags tie, ancestry and full shas from the source repository (git blocks: it
runs in a worker thread, never on the event loop). The apps' git questions are answered together (`Rounds`):
one walk of history answers every ancestry question of a round, whatever the apps and candidates."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import ImageConfig, ImageRef, Manifest, ManifestHead
from tagtrail.config import Config
from tagtrail.domain.scheme import ParsedTag, Ranking, Scheme, rank
from tagtrail.errors import RegistryError
from tagtrail.reconcile.claims import ClaimsRegistry, Memory, Provenance
from tagtrail.reconcile.rebuilt import Question, same_inputs_many
from tagtrail.reconcile.rounds import Rounds

_EARLIEST = datetime.min.replace(tzinfo=UTC)
Pair = tuple[str, str]


class Registry(ClaimsRegistry, Protocol):
    """The registry reads a reconcile makes (RegistryClient; an in-memory registry in fast tests)."""

    async def list_tags(self, ref: ImageRef) -> list[str]: ...

    async def head(self, ref: ImageRef) -> ManifestHead: ...

    async def manifest(self, ref: ImageRef) -> Manifest: ...

    async def image_config(self, ref: ImageRef) -> ImageConfig: ...


class Observer:
    """Answers for one run. Tag lists may be asked for ahead (`prefetch`, while git fetches); `close`
    lets go of those nobody used."""

    def __init__(
        self,
        client: Registry,
        source: GitRepo | None,
        memory: Memory | None = None,
        branches: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.source = source
        self.rounds = Rounds()
        self.provenance = Provenance(client, source, memory or Memory(), branches, self.rounds)
        self._tags: dict[str, asyncio.Task[list[str]]] = {}
        self._digests: dict[tuple[str, str], str] = {}
        self._proven: set[tuple[str, str]] = set()
        self._same_inputs: (
            tuple[Config, Callable[[list[Question]], Awaitable[dict[Question, bool]]]] | None
        ) = None

    def prefetch(self, refs: Iterable[ImageRef]) -> None:
        for ref in refs:
            self._tag_task(ref)

    async def tags(self, ref: ImageRef) -> list[str]:
        return await self._tag_task(ref)

    def _tag_task(self, ref: ImageRef) -> asyncio.Task[list[str]]:
        task = self._tags.get(ref.name)
        if task is None:
            task = self._tags[ref.name] = asyncio.ensure_future(self._list(ref))
        return task

    async def _list(self, ref: ImageRef) -> list[str]:
        return await self.client.list_tags(ref)

    def ranking(self, ref: ImageRef, scheme: Scheme, tags: Sequence[str], branches: Sequence[str]) -> Ranking:
        """The ranking of a repository's tags. A tag list equal to the one of the last reconcile (tagtrail
        serve's steady state) is not read again: that ranking is kept, with every tag it has parsed."""
        memory = self.provenance.memory
        kept = memory.rankings.get(ref.name)
        key = (scheme, tuple(branches))
        if kept is not None and kept[0] == key and kept[1] == tags:
            return kept[2]
        ranking = rank(scheme, tags, key[1])
        memory.rankings[ref.name] = (key, tags, ranking)
        return ranking

    async def digest(self, ref: ImageRef, tag: str) -> str:
        """The digest a HEAD of the tag answers (enough to decide; `prove` it before writing it)."""
        key = (ref.name, tag)
        if key not in self._digests:
            self._digests[key] = (await self.client.head(ref.with_tag(tag))).digest
        return self._digests[key]

    async def prove(self, ref: ImageRef, digest: str) -> None:
        """Read the manifest by `digest` from this repository, its bytes hashed, before the digest is
        written: a proxy or a broken registry that answered another build's digest, or one this
        repository does not hold, makes this raise (a RegistryError), and nothing is written."""
        if (ref.name, digest) in self._proven:
            return
        proven = await self.client.manifest(ref.with_digest(digest))  # checks the bytes' hash
        if proven.digest != digest:
            raise RegistryError(ref.registry, ref.repository, f"{digest[:19]}… does not read back as itself")
        self._proven.add((ref.name, digest))

    def proven(self, ref: ImageRef, digest: str) -> None:
        """`digest` was read from this repository and its bytes hashed already (an image read by tag)."""
        self._proven.add((ref.name, digest))

    async def created(self, ref: ImageRef, tags: Iterable[str], scheme: Scheme) -> dict[str, datetime]:
        """The `created` time of each image; the time in its tag when the image does not say."""

        async def one(tag: str) -> tuple[str, datetime]:
            config = await self.client.image_config(ref.with_tag(tag))
            if config.created is not None:
                return tag, config.created
            parsed = scheme.parse(tag)
            fallback = (
                max(parsed.instants) if isinstance(parsed, ParsedTag) and parsed.instants else _EARLIEST
            )
            return tag, fallback

        return dict(await asyncio.gather(*(one(t) for t in tags)))

    async def same_inputs(self, config: Config, app: str, base: str, head: str) -> bool:
        """Whether commit `head` leaves `app`'s inputs as commit `base` has them (False: cannot tell),
        asked with every other app's question of the round (`rebuilt.same_inputs_many`)."""
        if self.source is None:
            return False
        if self._same_inputs is None or self._same_inputs[0] is not config:
            source = self.source

            async def answer(questions: list[Question]) -> dict[Question, bool]:
                return await asyncio.to_thread(same_inputs_many, source, config, questions)

            self._same_inputs = (config, answer)
        found = await self.rounds.ask(self._same_inputs[1], [(app, base, head)])
        return found[(app, base, head)]

    async def ancestry(self, pairs: Iterable[Pair]) -> dict[Pair, bool | None]:
        """For each (candidate, running) pair: whether the candidate is a strict ancestor of the running
        commit (None: the source repository cannot tell)."""
        asked = list(pairs)
        if self.source is None:
            return dict.fromkeys(asked)
        return await self.rounds.ask(self._ancestry, asked)

    async def _ancestry(self, pairs: list[Pair]) -> dict[Pair, bool | None]:
        source = self.source
        if source is None:  # asked only with a source
            return dict.fromkeys(pairs)
        return await asyncio.to_thread(source.strict_ancestry, pairs)

    async def built_from(self, shas: Iterable[str]) -> dict[str, str]:
        """The full sha each short sha names in the source repository (itself when it is not known there)."""
        source = self.source
        wanted = [s for s in dict.fromkeys(shas) if s]
        if source is None:
            return {s: s for s in wanted}
        found = await asyncio.to_thread(source.resolve_many, wanted)  # none for shas git already resolved
        return {s: found.get(s) or s for s in wanted}

    async def close(self) -> None:
        """Tag lists and image reads asked for ahead that nobody used (an app not in the files, an error, a
        candidate refused after all): let them go."""
        for task in self._tags.values():
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await self.provenance.settle()
