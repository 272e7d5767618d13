"""Was the winner, the code one app runs rebuilt, built on another base than the running build? The base
watch's question, asked by a reconcile of an app whose winner is its running code rebuilt where no watch has
said so (the CLI, or serve with the watch off: `evaluate`, `rebuilt`), so both record the same reason. And
what a base check needs of each app the target declares (`running_of`). baseimages is imported when first
asked: a plan that meets no rebuild never loads it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tagtrail.adapters import apps as discovery
from tagtrail.adapters.refs import Matcher
from tagtrail.adapters.registry import ImageRef, Revision
from tagtrail.config import Config
from tagtrail.domain.scheme import ParsedTag
from tagtrail.errors import TagtrailError
from tagtrail.targets.base import AppState

if TYPE_CHECKING:
    from tagtrail.adapters.baseimages import Memory, Running
    from tagtrail.adapters.baseimages.check import Reads


class MovedBase:
    """The question for one reconciler's apps, with what its checks learned (serve keeps the reconciler,
    so this memory, across polls)."""

    def __init__(self, client: Reads, config: Config, root: Path, matcher: Matcher) -> None:
        self._client = client
        self._config = config
        self._root = root  # tagtrail.yaml's folder
        self._matcher = matcher
        self._memory: Memory | None = None

    async def __call__(self, state: AppState, winner: Revision | None = None) -> bool:
        """Whether the build `state` runs and the winner record different bases (a failed read: no). The
        winner's base comes from its own read (`winner`, the revision check's), so a winner that records
        none (built FROM scratch, or by a builder that records nothing) costs no read of the running image;
        the running image's record is read once per digest. Without the winner's read, the watch's own
        question: has the tag of the running build's base moved since it was built."""
        from tagtrail.adapters.baseimages import Check, Memory, Recorded  # noqa: PLC0415 (lazy: only a rebuild asks)

        self._memory = self._memory or Memory()
        check = Check(self._client, self._memory, root=self._root)
        if winner is None:
            [row] = await check.run(running_of(self._config, self._root, self._matcher, {state.app: state}))
            return bool(row.moved)
        built_on = Recorded(*winner.base) if winner.base is not None else None
        self._memory.recorded.setdefault(winner.digest, built_on)  # when it runs, it is not read again
        if built_on is None or not state.running.tag:
            return False
        ref = ImageRef.parse(f"{self._matcher.canonical(state.app)}:{state.running.tag}")
        try:
            used = await check.recorded(ref, state.running.digest)
        except TagtrailError:  # the registry's answer, or a malformed one: cannot be told
            return False
        return used is not None and used.digest != built_on.digest


def running_of(
    config: Config, root: Path, matcher: Matcher, declared: Mapping[str, AppState]
) -> list[Running]:
    """What the base check needs of each app in `declared`: what runs, and where its Dockerfile is."""
    from tagtrail.adapters.baseimages import Running  # noqa: PLC0415 (lazy, as above)

    found = discovery.discover_named(root, config, declared)
    running = []
    for name, state in sorted(declared.items()):
        parsed = config.tag_scheme.parse(state.running.tag) if state.running.tag else None
        app = found.get(name)
        running.append(
            Running(
                name,
                matcher.canonical(name),
                state.running.tag,
                state.running.digest,
                app.dockerfile if app is not None else f"{config.apps.root}/{name}/Dockerfile",
                parsed.sha if isinstance(parsed, ParsedTag) else None,
            )
        )
    return running
