"""What an existing GitHub workflow already says about images: docker/metadata-action's `images:` (where they
are pushed) and `tags:` (the tag template, which becomes the scheme).

metadata-action's `tags:` input is one `type=…` line per tag. Only `type=raw` with a template of branch, sha
and time can be a tagtrail scheme; `type=sha`, `type=ref`, `type=schedule`, `type=semver` and the like make
tags tagtrail cannot order, so they are reported and left to the workflow. A zone metadata-action does not
know is not an error there: it renders the tag in UTC. The scheme proposed is therefore the one that reads
the tags already in the registry (UTC), and the zone that was meant is named next to it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from ruamel.yaml.comments import CommentedMap

from tagtrail.config import DEFAULT_SCHEME
from tagtrail.domain.scheme import Scheme, suggest_zone
from tagtrail.errors import SchemeError
from tagtrail.features.init.expressions import APP, Context, app_key, mixed_in, per_app, resolve
from tagtrail.features.init.reader import Reader

METADATA_ACTION = "docker/metadata-action"
WORKFLOWS = ".github/workflows"
# a reusable workflow's inputs, from its callers' `with:`: those per app as templates, those mixed by app
Inputs = tuple[dict[str, str], dict[str, str]]
_ZONE = re.compile(r"""tz=(['"])(.*?)\1""")
_UNEXPRESSIBLE = {
    "sha": "sha-<commit> tags carry no branch and no time",
    "ref": "a branch, tag or pull-request name carries no commit and no time",
    "schedule": "nightly tags carry no branch and no commit",
    "semver": "version tags carry no branch and no time",
    "pep440": "version tags carry no branch and no time",
    "match": "tags matched from a git tag carry no branch and no time",
    "edge": "the edge tag carries no commit and no time",
}


@dataclass(frozen=True)
class MetadataStep:
    """One docker/metadata-action step: where it is, and its inputs with `${{ }}` resolved where possible."""

    where: str  # path:line of the step
    images: tuple[str, ...]  # image templates with {app}; unresolved ones are left out
    unresolved: tuple[str, ...]  # images whose expressions could not be resolved, as written
    tags: tuple[str, ...]  # the `type=…` lines
    tags_where: str
    flavor: dict[str, str]
    sha_length: int | None  # DOCKER_METADATA_SHORT_SHA_LENGTH
    from_remote: bool  # images: uses github.* values, which init takes from the git remote
    written: dict[str, str] = field(default_factory=dict)  # an image as resolved → as the workflow writes it
    # an image as written → why it names no one template (a sentence per expression that mixes)
    mixed: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SchemeChoice:
    """The scheme init proposes, where it came from, and what the reader should know about it."""

    scheme: str
    source: str  # a sentence: "from …" or why the default
    sha_length: int = 7
    notes: tuple[str, ...] = ()  # said once, no action needed
    todo: tuple[str, ...] = ()  # the user should act
    ignored: tuple[str, ...] = field(default=())  # tag lines tagtrail leaves to the workflow, with why
    scheme_from_workflow: bool = False


def read_workflows(
    reader: Reader, files: list[str], owner_repo: str | None, apps: list[str]
) -> list[MetadataStep]:
    """Every metadata-action step of the repository's workflows, in file order."""
    workflows = {}
    for path in sorted(files):
        pure = PurePosixPath(path)
        if pure.parent.as_posix() == WORKFLOWS and pure.suffix in (".yml", ".yaml"):
            document = reader.document(path)
            if isinstance(document, CommentedMap):
                workflows[path] = document
    calls = _calls(workflows, owner_repo, apps)
    found = []
    for path, document in workflows.items():
        found += _steps(path, document, owner_repo, apps, per_app(calls.get(path, []), apps))
    return found


def _env(node: object) -> dict[str, str]:
    env = node.get("env") if isinstance(node, CommentedMap) else None
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, CommentedMap) else {}


def _jobs(workflow: CommentedMap) -> list[CommentedMap]:
    jobs = workflow.get("jobs")
    return [j for j in jobs.values() if isinstance(j, CommentedMap)] if isinstance(jobs, CommentedMap) else []


def _context(
    workflow: CommentedMap,
    job: CommentedMap,
    owner_repo: str | None,
    apps: list[str],
    inputs: Inputs = ({}, {}),
) -> Context:
    """A job's context: its env (the workflow's under it), what its matrix says of the apps, and the inputs
    its workflow's callers pass (`per_app` of their `with:`)."""
    strategy = job.get("strategy")
    matrix = strategy.get("matrix") if isinstance(strategy, CommentedMap) else None
    env = _env(workflow) | _env(job)
    found = _prefixed("inputs", inputs[0])
    mixed = _prefixed("inputs", inputs[1])
    if not isinstance(matrix, CommentedMap):  # none, or fromJSON(…) of a job before: the apps, as tagtrail's
        return Context(env, owner_repo, found, open_matrix=True, mixed=mixed)
    for key, values in matrix.items():
        if key == "include" and isinstance(values, list):
            entries = [{str(k): str(v) for k, v in e.items()} for e in values if isinstance(e, CommentedMap)]
            paired, unpaired = per_app(entries, apps)
            found |= _prefixed("matrix", paired)
            mixed |= _prefixed("matrix", unpaired)
        elif isinstance(values, list) and app_key([str(v) for v in values], apps):
            found[f"matrix.{key}"] = APP
    open_matrix = any(isinstance(v, str) for v in matrix.values())
    return Context(env, owner_repo, found, open_matrix, mixed)


def _prefixed(prefix: str, values: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}.{key}": value for key, value in values.items()}


def _calls(
    workflows: dict[str, CommentedMap], owner_repo: str | None, apps: list[str]
) -> dict[str, list[dict[str, str]]]:
    """The `with:` of each job calling a reusable workflow of this repository, by the workflow's path, its
    values resolved in the caller (a caller's matrix of apps passes `{app}`)."""
    found: dict[str, list[dict[str, str]]] = {}
    for workflow in workflows.values():
        for job in _jobs(workflow):
            called = str(job.get("uses", "")).removeprefix("./").partition("@")[0]
            given = job.get("with")
            if called not in workflows or not isinstance(given, CommentedMap):
                continue
            context = _context(workflow, job, owner_repo, apps)
            entry = {str(k): resolve(str(v), context) for k, v in given.items()}
            found.setdefault(called, []).append({k: v for k, v in entry.items() if v is not None})
    return found


def _steps(
    path: str, workflow: CommentedMap, owner_repo: str | None, apps: list[str], inputs: Inputs
) -> list[MetadataStep]:
    """The metadata-action steps of one workflow; `inputs`: what its callers pass."""
    found = []
    for job in _jobs(workflow):
        steps = job.get("steps")
        job_context = _context(workflow, job, owner_repo, apps, inputs)
        for step in steps if isinstance(steps, list) else ():
            if not isinstance(step, CommentedMap) or not str(step.get("uses", "")).startswith(
                METADATA_ACTION
            ):
                continue
            given = step.get("with")
            if not isinstance(given, CommentedMap):
                continue
            env = {**job_context.env, **_env(step)}
            context = replace(job_context, env=env)
            images: list[str] = []
            unresolved: list[str] = []
            written: dict[str, str] = {}
            mixed: dict[str, tuple[str, ...]] = {}
            raw = str(given.get("images", ""))
            for name in _image_names(raw):
                resolved = resolve(name, context)
                (images if resolved is not None else unresolved).append(resolved or name)
                written[resolved or name] = name
                said = tuple(
                    f"images: {name} in {path}:{step.lc.line + 1}: {expression} gives each app an image of"
                    f" its own that follows no one name ({pairs}); tagtrail names all the apps' images with one"
                    " template: rename them to one pattern with the app's name in it, then set image: to it"
                    for expression, pairs in mixed_in(name, context)
                )
                if said:
                    mixed[name] = mixed.get(name, ()) + said
            length = env.get("DOCKER_METADATA_SHORT_SHA_LENGTH", "")
            tags_line = given.lc.value("tags")[0] + 1 if "tags" in given else step.lc.line + 1
            found.append(
                MetadataStep(
                    f"{path}:{step.lc.line + 1}",
                    tuple(images),
                    tuple(unresolved),
                    tuple(_lines(str(given.get("tags", "")))),
                    f"{path}:{tags_line}",
                    dict(_attributes(line) for line in _lines(str(given.get("flavor", ""))) if "=" in line),
                    int(length) if length.isdigit() else None,
                    "github." in raw or any("github." in v for v in env.values()),
                    written,
                    mixed,
                )
            )
    return found


def _lines(text: str) -> list[str]:
    """metadata-action's list inputs: one item per line, comments and blank lines left out."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _attributes(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip(), value.strip()


def _image_names(text: str) -> list[str]:
    """The images: input's names: a line is `name=…,enable=…` attributes, or names separated by commas."""
    names = []
    for line in _lines(text):
        fields = next(csv.reader([line]))
        attributes = dict(_attributes(f) for f in fields if "=" in f)
        names += [attributes["name"]] if "name" in attributes else [f.strip() for f in fields if f.strip()]
    return names


def choose_scheme(steps: list[MetadataStep]) -> SchemeChoice:
    """The scheme of the first metadata-action step whose tags can become one; else the default, with why
    the first step's tags cannot (a release workflow of version tags next to the build workflow is common)."""
    tagged = [s for s in steps if s.tags]
    if not tagged:
        return SchemeChoice(
            DEFAULT_SCHEME,
            "tagtrail's default, as no workflow here tags images with docker/metadata-action",
            todo=("no workflow tags images yet: `tagtrail ci github` writes one that uses this scheme",),
        )
    choices = [_step_scheme(step) for step in tagged]
    return next((c for c in choices if c.scheme_from_workflow), choices[0])


def _step_scheme(step: MetadataStep) -> SchemeChoice:
    sha_length = step.sha_length or 7
    chosen: SchemeChoice | None = None
    ignored: list[str] = []
    rejected: list[str] = []
    for line in step.tags:
        kind, attributes = _tag_line(line)
        if kind != "raw":
            why = _UNEXPRESSIBLE.get(kind, "tagtrail cannot read this kind of tag back")
            ignored.append(f"{line}: {why}; tagtrail ignores these tags")
            continue
        if chosen is not None:
            ignored.append(f"{line}: another tag of the same build; tagtrail ignores it")
            continue
        prefix = attributes.get("prefix", step.flavor.get("prefix", ""))
        suffix = attributes.get("suffix", step.flavor.get("suffix", ""))
        template = prefix + attributes.get("value", "") + suffix
        found = _from_template(template, sha_length, step.tags_where)
        if isinstance(found, SchemeChoice):
            chosen = found
        else:
            rejected.append(f"`{template}` in {step.tags_where} cannot be read back: {found}")
    if chosen is not None:
        return SchemeChoice(
            chosen.scheme,
            chosen.source,
            sha_length,
            chosen.notes,
            (*rejected, *chosen.todo),
            tuple(ignored),
            scheme_from_workflow=True,
        )
    return SchemeChoice(
        DEFAULT_SCHEME,
        f"tagtrail's default, as no tag of {step.tags_where} can be read back",
        sha_length,
        todo=(
            *rejected,
            f"change the tags in {step.tags_where} to `type=raw,value={DEFAULT_SCHEME}` (`tagtrail ci github`"
            " writes a workflow that does); builds tagged before that are never deployed",
        ),
        ignored=tuple(ignored),
    )


def _tag_line(line: str) -> tuple[str, dict[str, str]]:
    """`type=raw,enable=true,value=…` as its type and attributes (csv, as metadata-action splits it)."""
    fields = next(csv.reader([line]))
    attributes = dict(_attributes(f) for f in fields if "=" in f)
    if "type" not in attributes:  # a bare line is a raw value
        return "raw", {"value": line}
    return attributes.pop("type"), attributes


def _from_template(template: str, sha_length: int, where: str) -> SchemeChoice | str:
    """A SchemeChoice for a raw template, or why it cannot be one."""
    notes, todo = [], []
    fixed = template
    for match in _ZONE.finditer(template):
        zone = match[2]
        meant = suggest_zone(zone)
        if meant is not None and meant.lower() == zone.strip().lower():
            continue
        fixed = fixed.replace(match[0], "tz='UTC'")
        named = f"you probably meant '{meant}'" if meant else "it names no zone"
        notes.append(
            f"tz='{zone}' in {where} is not a time zone ({named}): metadata-action silently renders those tags"
            " in UTC, so the scheme says tz='UTC' and reads the tags already built right."
        )
        todo.append(
            f"write tz='UTC' in {where} too (the tags stay the same); to use "
            f"'{meant or 'your zone'}' instead, change the workflow and tagtrail.yaml together, knowing that"
            " tags built before the change will read as that zone's time, off by its UTC offset"
        )
    try:
        Scheme.compile(fixed, sha_length)
    except SchemeError as exc:
        return str(exc)
    return SchemeChoice(
        fixed, f"from docker/metadata-action's type=raw tag in {where}", sha_length, tuple(notes), tuple(todo)
    )
