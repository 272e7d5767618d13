"""A person's promotion (`tagtrail promote`): a build the environment before runs, deployed to an
environment that takes from it. Through the gate, as the reconciler would (its soak, no failure there),
a manual gate opened for this app only; `force` deploys one whose gate is closed, recorded as forced with
who and why, its commit naming the environment it came from."""

from __future__ import annotations

from tagtrail.config.environments import lane_of
from tagtrail.domain.policy import Reason, eligible_build
from tagtrail.errors import TagtrailError
from tagtrail.reconcile.lanes import evidence_reader
from tagtrail.reconcile.manual import explicit_change
from tagtrail.reconcile.outcome import Report
from tagtrail.reconcile.reconciler import Reconciler


async def promote(
    reconciler: Reconciler,
    app: str,
    build: str | None,
    *,
    actor: str,
    force: bool = False,
    why: str | None = None,
) -> Report:
    """Deploy `build` (default: what the environment before runs) of `app` here, if its gate is open."""
    project = reconciler.project
    lane = lane_of(project.config)
    if lane is None or lane.take_from is None or project.upstream is None:
        raise TagtrailError(
            f"{project.environment} takes no builds from another environment (no from:): promote to one that does"
        )
    source = lane.take_from
    tag = build or (await evidence_reader(project.upstream)(app)).tag
    if tag is None:
        raise TagtrailError(f"{source} runs no build of {app}: name the build to promote")
    planned = await reconciler.plan([app], actor=actor, record=False, promote=[app])
    decision = planned[0].decision
    if decision.action == "deploy" and decision.target_tag == tag:
        return await reconciler.run([app], actor=actor, promote=[app])
    if decision.running.tag == tag:
        return Report(planned)  # there already: nothing to change
    if not force:
        said = f"{decision.sentence} ({decision.reason})"
        raise TagtrailError(
            f"the gate of {project.environment} is closed for {app} {tag}: {said}; --force --why TEXT"
            " promotes it anyway, recorded as forced"
        )
    said_why = " ".join((why or "").split())[:200]  # one line: it goes into a commit trailer
    if not said_why:
        raise TagtrailError("a forced promotion says why: add --why TEXT")
    branches = project.config.deploy.branches_of(app)
    if eligible_build(project.config.tag_scheme, branches, tag) is None:
        raise TagtrailError(
            f"'{tag[:80]}' is not a build of {', '.join(branches)}: only eligible builds are promoted"
        )
    sentence = f"promoted by force by {actor}: {said_why} (the gate said: {decision.sentence})"
    return await explicit_change(
        reconciler,
        app,
        tag,
        Reason.PROMOTE_FORCED,
        actor,
        pin=False,
        sentence=sentence,
        promoted=(source, f"forced by {actor}: {said_why}"),
    )
