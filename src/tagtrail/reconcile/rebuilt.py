"""Which newer builds of an app are the code that runs, rebuilt: for an app whose base image moved, the
running commit and the candidates whose commit leaves the app's inputs as the running commit has them
(deploy commits and other apps' changes on top do not count; `apps.changed` is the one rule). The policy says
`base-image` for those, so a rebuild the base watch started through GitHub, which builds the branch's head,
is told apart from new code.

That is a property of the build, not of who deploys it: where no base watch has said the base moved (the
CLI, or serve with the watch off), a winner is asked about once it is chosen (`evaluate`): is it the
running code (`same_inputs_many`, every app's question at once), and only then, do the two builds record
different bases (`moved.MovedBase`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tagtrail.adapters.apps import changed, changed_in, discover
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.config import Config
from tagtrail.domain.scheme import ParsedTag, Ranking

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
        return frozenset({base, *(sha for sha in shas if _same_inputs(source, config, app, full, sha))})

    return await asyncio.to_thread(work)


Question = tuple[str, str, str]  # app, the running build's sha, a newer build's sha (short, as tags say)


def same_inputs_many(source: GitRepo, config: Config, questions: Iterable[Question]) -> dict[Question, bool]:
    """For each question, whether the newer commit leaves the app's inputs as the running one has them, by
    the rule of `apps.changed`, in one or two git processes for them all (blocking); a pair whose tagtrail.yaml
    differs reads its build settings at both ends."""
    asked = list(dict.fromkeys(questions))
    # the shas are mostly known already (the ancestry and commit checks resolved them): no process then
    named = source.resolve_many(sha for _, base, head in asked for sha in (base, head))
    known = {sha: full for sha, full in named.items() if full is not None}
    pairs = sorted({(known[b], known[h]) for _, b, h in asked if b in known and h in known})
    paths = dict(zip(pairs, source.changed_paths_many(pairs), strict=True))
    apps = discover(source.root, config)
    names = {a.name for a in apps}
    answers: dict[Question, bool] = {}
    for question in asked:
        app, base, head = question
        if base not in known or head not in known or app not in names:
            answers[question] = False
            continue
        full = (known[base], known[head])
        picked, _ = changed_in(source, apps, *full, paths[full])
        answers[question] = app not in {a.name for a in picked}
    return answers


def _same_inputs(source: GitRepo, config: Config, app: str, full: str, sha: str) -> bool:
    """Whether commit `sha` leaves the app's inputs as commit `full` has them (blocking git)."""
    head = source.resolve(sha)
    return head is not None and app not in {a.name for a in changed(source, config, full, head)[0]}
