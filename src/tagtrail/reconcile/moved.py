"""Has the base image of the build one app runs moved since it was built? The base watch's question, asked by
a reconcile of an app whose winner is its running code rebuilt where no watch has said so (the CLI, or serve
with the watch off: `evaluate`, `rebuilt`), so both record the same reason. And what a base check needs of
each app the target declares (`running_of`). baseimages is imported when first asked: a plan that meets no
rebuild never loads it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tagtrail.adapters import apps as discovery
from tagtrail.adapters.refs import Matcher
from tagtrail.config import Config
from tagtrail.domain.scheme import ParsedTag
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

    async def __call__(self, state: AppState) -> bool:
        """Whether the base of the build `state` runs has moved (a failed read: not moved). No Dockerfile is
        read: an image that records no base digest cannot say it moved."""
        from tagtrail.adapters.baseimages import Memory, check  # noqa: PLC0415 (lazy: only a rebuild asks)

        self._memory = self._memory or Memory()
        running = running_of(self._config, self._root, self._matcher, {state.app: state})
        [row] = await check(self._client, running, memory=self._memory, root=self._root)
        return bool(row.moved)


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
