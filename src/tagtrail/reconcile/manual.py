"""A person's actions: roll back, pin, unpin. Each is one atomic change of the target (the image and the
pin in tagtrail.yaml together), recorded with its actor, so automation never undoes it."""

from __future__ import annotations

from dataclasses import replace

from tagtrail.adapters.registry import ImageRef
from tagtrail.domain.policy import Decision, Reason, eligible_build, explicit
from tagtrail.domain.scheme import ParsedTag, rank
from tagtrail.errors import TagtrailError
from tagtrail.reconcile.observe import Observer, Registry
from tagtrail.reconcile.outcome import Planned, Report
from tagtrail.reconcile.reconciler import Reconciler
from tagtrail.targets.base import Change, Declared, ImageChange
from tagtrail.targets.project import Project


async def rollback(reconciler: Reconciler, app: str, to: str | None, *, actor: str) -> Report:
    """Deploy an earlier build of `app` (a tag, a commit, or the previous entry of its history) and pin it."""
    config = reconciler.project.config
    branches = tuple(config.deploy.branches_of(app))
    scheme = config.tag_scheme
    if to is None:
        entries = await reconciler.project.target.history(app)
        current = entries[0].tag if entries else None
        earlier = [e.tag for e in entries[1:] if e.tag and e.tag != current]
        eligible = [t for t in earlier if eligible_build(scheme, branches, t)]
        if not eligible:
            raise TagtrailError(
                f"{app} has no earlier deploy of a build of {', '.join(branches)} in the history of the deploy files;"
                " pass --to TAG|SHA"
            )
        tag = eligible[0]
    else:
        tag = await _resolve_to(reconciler.project, app, to, branches)
    if eligible_build(scheme, branches, tag) is None:
        raise TagtrailError(
            f"'{tag}' is not a build of {', '.join(branches)}: only eligible builds are ever deployed"
        )
    return await explicit_change(reconciler, app, tag, Reason.ROLLBACK, actor)


async def pin(reconciler: Reconciler, app: str, tag: str, *, actor: str, force: bool = False) -> Report:
    """Deploy `tag` for `app` and hold it there. Only an eligible build (of the scheme, on a deploy branch)
    unless `force`, which the commit then records (reason pin-forced)."""
    config = reconciler.project.config
    branches = config.deploy.branches_of(app)
    if eligible_build(config.tag_scheme, branches, tag) is not None:
        return await explicit_change(reconciler, app, tag, Reason.PIN, actor)
    if not force:
        raise TagtrailError(
            f"'{tag[:80]}' is not a build of {', '.join(branches)} in the scheme ({config.tag_scheme.example});"
            " only eligible builds are pinned. Pass --force to pin it anyway (the commit says so)"
        )
    ImageRef.parse(reconciler.project.matcher.canonical(app)).with_tag(
        tag
    )  # a tag at all, before any request
    return await explicit_change(reconciler, app, tag, Reason.PIN_FORCED, actor)


async def unpin(reconciler: Reconciler, app: str, *, actor: str) -> Report:
    """Remove `app`'s pin: the next deploy moves it to the newest eligible build again."""
    if app not in reconciler.project.config.deploy.pins:
        declared = await reconciler.project.target.declared()
        if app not in (declared.pins or {}):
            raise TagtrailError(f"{app} is not pinned")
    return await explicit_change(reconciler, app, None, Reason.UNPIN, actor)


async def explicit_change(
    reconciler: Reconciler,
    app: str,
    tag: str | None,
    reason: Reason,
    actor: str,
    *,
    pin: bool = True,
    sentence: str | None = None,
    promoted: tuple[str, str] | None = None,
) -> Report:
    """One change that writes `tag` for `app` (unless unpinning) and sets or removes its pin (`pin`: a
    forced promotion writes the build only); `sentence` says why in a person's words."""
    report = Report([])
    repository = reconciler.project.matcher.canonical(app)
    ref = ImageRef.parse(repository)
    observer = Observer(reconciler.project.client, await reconciler.project.source())
    scheme = reconciler.project.config.tag_scheme

    async def decide(declared: Declared) -> Change:
        state = declared.states.get(app)
        if state is None:
            raise TagtrailError(f"no reference to app '{app}' in {reconciler.project.target.where}")
        if tag is None:
            reconciler.project.fence.check()
            return Change(str(reason), actor, pins={app: None})
        digest = await observer.digest(ref, tag)
        decision = explicit(app, scheme, reason, tag, state.running, digest)
        assert isinstance(decision, Decision)  # noqa: S101 (its digest was given)
        decision = replace(decision, sentence=sentence) if sentence else decision
        if decision.action == "deploy":
            await observer.prove(ref, digest)  # read back by digest before it is written
        full = await observer.built_from([decision.target.sha] if decision.target else [])
        built = full.get(decision.target.sha) if decision.target else None
        item = Planned(decision, repository, built_from=built, promoted=promoted)
        report.planned = [item]
        target = item.target
        images = (
            (ImageChange(app, target, reason, decision.sentence, item.built_from, *(promoted or ())),)
            if target
            else ()
        )
        reconciler.project.fence.check()  # the last moment before the target writes
        return Change(str(reason), actor, images, pins={app: tag} if pin else {})

    report.applied = await reconciler.write(decide)
    if report.planned:
        await reconciler.record(report, actor)
    return report


async def _resolve_to(project: Project[Registry], app: str, to: str, branches: tuple[str, ...]) -> str:
    """A tag of the scheme as given, or the newest build of the commit a (short) sha names."""
    scheme = project.config.tag_scheme
    if isinstance(scheme.parse(to), ParsedTag):
        return to
    if not (4 <= len(to) <= 64 and all(c in "0123456789abcdef" for c in to.lower())):
        raise TagtrailError(f"'{to}' is neither a tag of the scheme ({scheme.example}) nor a commit sha")
    sha = to.lower()
    tags = await project.client.list_tags(ImageRef.parse(project.matcher.canonical(app)))
    ranking = rank(scheme, tags, branches)
    for tag in ranking.newest_first:
        build = ranking.parse(tag)
        if isinstance(build, ParsedTag) and (
            sha.startswith(build.sha) if len(sha) >= len(build.sha) else build.sha.startswith(sha)
        ):
            return tag
    raise TagtrailError(f"no build of commit {to} on {', '.join(branches)} in the registry for {app}")
