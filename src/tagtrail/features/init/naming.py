"""Which image template init proposes, and why: the name a workflow pushes to, confirmed by the deploy files
where several workflows (or a repository variable) leave it open; else the template that explains the most of
the deploy files' references; else ghcr.io after the git remote. Each sentence it adds to `todo` says what it
saw and what to write."""

from __future__ import annotations

from dataclasses import dataclass

from tagtrail.adapters.refs import Matcher
from tagtrail.adapters.registry import ImageRef
from tagtrail.errors import InvalidReference
from tagtrail.features.init.choice import Choice
from tagtrail.features.init.deployfiles import YamlFile, by_template, infer_image
from tagtrail.features.init.expressions import filled, variables
from tagtrail.features.init.workflow import MetadataStep


@dataclass(frozen=True)
class _Pushed:
    template: str
    where: str
    why: str  # what made it known, when more than the images: input


def choose_image(
    steps: list[MetadataStep], files: list[YamlFile], apps: list[str], owner_repo: str | None, todo: list[str]
) -> tuple[Choice, list[Choice], str | None]:
    """image:, the other names the same step pushes to (aliases), and where that step is (None: no step)."""
    pushed: list[list[_Pushed]] = []
    for step in steps:
        usable = [p for name in step.images if (p := _usable(name, step, files, apps, todo)) is not None]
        todo += [sentence for said in step.mixed.values() for sentence in said]
        for name in (n for n in step.unresolved if n not in step.mixed):  # said why above
            todo.append(
                f"images: {name} in {step.where} uses an expression init cannot know here (secrets, outputs,"
                " or github.* without a GitHub remote); not used"
            )
        if usable:
            pushed.append(usable)
    if pushed:
        return _from_workflows(pushed, files, apps, owner_repo, steps, todo)
    inferred = infer_image(files, apps)
    if inferred is not None:
        template, named, where = inferred
        open_by = next((s.where for s in steps if s.images or s.unresolved), None)
        why = (
            f"the name that explains the most references in the deploy files ({_count(len(where), 'reference')}"
            f" of {_count(len(named), 'app')}, first {where[0].path}:{where[0].line});"
            + (
                f" the workflow ({open_by}) leaves it open"
                if open_by
                else " no workflow says where images go"
            )
        )
        return Choice(template, why), [], None
    if owner_repo is not None:
        return (
            Choice(f"ghcr.io/{owner_repo}/{{app}}", "ghcr.io, named after the repository (its git remote)"),
            [],
            None,
        )
    todo.append(
        "no workflow, deploy file or GitHub remote says where images go: set image: to that repository"
    )
    return (
        Choice("ghcr.io/owner/repo/{app}", "a placeholder: nothing here says where images are pushed"),
        [],
        None,
    )


def _usable(
    name: str, step: MetadataStep, files: list[YamlFile], apps: list[str], todo: list[str]
) -> _Pushed | None:
    why = ""
    holes = variables(name)
    if holes:
        candidates = by_template(files, apps)
        found = filled(name, sorted(candidates, key=lambda t: -len(candidates[t][0])))
        shown = ", ".join(f"vars.{h.upper()}" for h in holes)
        if found is None:
            todo.append(
                f"images: {step.written.get(name, name)} in {step.where} uses {shown}, a repository variable"
                " init cannot read, and no deploy file names an image of that shape: set image: to the name"
                " with its value filled in"
            )
            return None
        name, values = found
        said = ", ".join(f"vars.{h.upper()} as {v}" for h, v in values.items())
        why = f"; {shown} is a repository variable, read from the deploy files' names ({said})"
    head, app, _ = name.partition("{app}")
    # `{app}` as the whole name (`${{ matrix.image }}` of a matrix init cannot read) names no repository
    if not app or "/" not in head or name.count("{app}") != 1 or not _is_repository(name):
        todo.append(f"images: {name} in {step.where} does not name one image per app ({{app}}); not used")
        return None
    return _Pushed(name, step.where, why)


def _from_workflows(
    pushed: list[list[_Pushed]],
    files: list[YamlFile],
    apps: list[str],
    owner_repo: str | None,
    steps: list[MetadataStep],
    todo: list[str],
) -> tuple[Choice, list[Choice], str]:
    """The first step's name, unless steps disagree: then the one the deploy files confirm most."""
    firsts = {p[0].template: p for p in reversed(pushed)}
    chosen = pushed[0]
    confirmed = {t: _references(t, files, apps) for t in firsts}
    if len(firsts) > 1:
        chosen = firsts[max(firsts, key=lambda t: (confirmed[t], t == pushed[0][0].template))]
        others = "; ".join(f"{t} in {p[0].where} ({confirmed[t]})" for t, p in firsts.items())
        todo.append(
            f"the workflows push to different names (references in the deploy files: {others}); image: is"
            f" {chosen[0].template}, the one the deploy files confirm most: delete the other step if it is"
            " stale, or add its name to deploy.aliases if the deploy files use it"
        )
    first = chosen[0]
    via = ", with github.* from the git remote" if owner_repo and _from_remote(first.where, steps) else ""
    why = f"the images: input of {first.where}{via}{first.why}"
    if len(steps) > 1 and len(firsts) == 1:
        why += f" (of {len(steps)} docker/metadata-action steps, the first that names one image per app)"
    aliases = [Choice(p.template, f"also pushed by {p.where}") for p in chosen[1:]]
    return Choice(first.template, why), aliases, first.where


def disagreement(
    image: Choice, aliases: list[str], files: list[YamlFile], apps: list[str]
) -> tuple[str, str] | None:
    """When the deploy files name the apps' images only under a name neither image: nor an alias is: that
    name, and one line saying both and what to write either way."""
    inferred = infer_image(files, apps)
    if inferred is None or _references(image.value, files, apps) or inferred[0] in aliases:
        return None
    template, _, where = inferred
    return template, (
        f"image: is {image.value}, which no deploy file names; they name {template}"
        f" ({_count(len(where), 'reference')}, first {where[0].path}:{where[0].line}): if that is where images"
        " go now, set image: to it; if it is a copy of the pushed images, list it in deploy.aliases"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("s" if n != 1 else "")


def _references(template: str, files: list[YamlFile], apps: list[str]) -> int:
    matcher = Matcher(template)
    return sum(1 for f in files for m in f.mentions if matcher.app_of(m.name) in apps)


def _from_remote(where: str, steps: list[MetadataStep]) -> bool:
    return any(s.from_remote for s in steps if s.where == where)


def _is_repository(template: str) -> bool:
    try:
        ImageRef.parse(template.replace("{app}", "app"))
    except InvalidReference:
        return False
    return ":" not in template.rsplit("/", 1)[-1] and "@" not in template
