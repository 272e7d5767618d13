"""Which newer builds of an app are the code that runs, rebuilt: for an app whose base image moved, the
running commit and the candidates whose commit leaves the app's inputs as the running commit has them
(deploy commits and other apps' changes on top do not count; `apps.changed` is the one rule). The policy says
`base-image` for those, so a rebuild the base watch started through GitHub, which builds the branch's head,
is told apart from new code."""

from __future__ import annotations

import asyncio

from tagtrail.apps import changed
from tagtrail.config import Config
from tagtrail.gitrepo import GitRepo
from tagtrail.scheme import ParsedTag, Ranking

NEWEST = 5  # candidates looked at, newest first: a base rebuild is the newest build, or close to it


async def same_code(
    source: GitRepo | None, config: Config, app: str, running: ParsedTag | None, ranking: Ranking
) -> frozenset[str]:
    """The short shas (as tags carry them) of builds of the running code; empty when that cannot be told."""
    if source is None or running is None or not running.sha:
        return frozenset()
    shas: list[str] = []
    for tag in ranking.newest_first[:NEWEST]:
        parsed = ranking.parse(tag)
        if isinstance(parsed, ParsedTag) and parsed.sha and parsed.sha not in shas:
            shas.append(parsed.sha)
    base = running.sha

    def work() -> frozenset[str]:
        full = source.resolve(base)
        if full is None:
            return frozenset()
        found = {base}
        for sha in shas:
            head = source.resolve(sha)
            if head is not None and app not in {a.name for a in changed(source, config, full, head)[0]}:
                found.add(sha)
        return frozenset(found)

    return await asyncio.to_thread(work)
