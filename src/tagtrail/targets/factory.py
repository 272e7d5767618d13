"""The one place a project and its target are built from the config.

A target kind is registered with the section of `deploy:` that selects it: the built-in `kubernetes:`
(direct mode) and `git:` (the default), and any a module adds with `register`, whose section the config
then accepts and validates with the kind's own settings model. Exactly one kind's section is configured;
without any, the project deploys to git (which says what it is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from tagtrail.adapters.history import DecisionLog, default_log_path
from tagtrail.config import Config
from tagtrail.config.environments import DEFAULT, lane_name, names, view
from tagtrail.config.model import DeployConfig
from tagtrail.config.sections import register_section
from tagtrail.errors import TagtrailError
from tagtrail.targets.base import Target
from tagtrail.targets.project import Project

R = TypeVar("R")


@dataclass(frozen=True)
class TargetKind:
    """How `deploy.<section>:` becomes a target. `build` gets the project (its config, matcher, cluster,
    fence), the section's settings, and `keep`: the project lives long (tagtrail serve), so the target may
    keep what it learns between deploys."""

    section: str
    build: Callable[[Project[Any], BaseModel, bool], Target]


KINDS: dict[str, TargetKind] = {}


def register(kind: TargetKind, settings: type[BaseModel] | None = None) -> None:
    """Make `deploy.<kind.section>:` choose `kind`; `settings` validates that section (None: a section the
    schema declares already)."""
    KINDS[kind.section] = kind
    if settings is not None:
        register_section(kind.section, settings)


def open_project(
    config: Config,
    config_path: Path,
    client: R,
    *,
    keep: bool = False,
    log: DecisionLog | None = None,
    target: Target | None = None,
    environment: str = DEFAULT,
) -> Project[R]:
    """The project of one environment of `config` (the one of a single deploy:), with the target its
    section chooses (`target`: one given)."""
    seen = view(config, environment)
    project = Project(seen, config_path, client, log or decision_log(seen, environment), environment)
    project.target = target or _target(project, keep)
    return project


def open_lanes(config: Config, config_path: Path, client: R, *, keep: bool = False) -> list[Project[R]]:
    """A project per environment, in the order builds go through them, sharing the registry client; each
    knows the one it takes builds from (`upstream`)."""
    lanes = {
        name: open_project(config, config_path, client, keep=keep, environment=name) for name in names(config)
    }
    for name, project in lanes.items():
        before = config.environments[name].take_from if config.environments else None
        project.upstream = lanes[before] if before else None
        project.others = [other for other in lanes.values() if other is not project]
    return list(lanes.values())


def decision_log(config: Config, environment: str | None = None) -> DecisionLog:
    """The decision log of `environment`, by default the one `config` is the view of (the only one of a
    single deploy:)."""
    path = config.deploy.decision_log
    return DecisionLog(
        Path(path).expanduser() if path else default_log_path(), environment or lane_name(config) or DEFAULT
    )


def _target(project: Project[Any], keep: bool) -> Target:
    deploy = project.config.deploy
    chosen = [(kind, settings) for kind in KINDS.values() if (settings := _settings(deploy, kind.section))]
    if len(chosen) > 1:
        sections = " and ".join(f"deploy.{kind.section}" for kind, _ in chosen)
        both = "both" if len(chosen) == 2 else "all"
        raise TagtrailError(f"{sections} are {both} set: a deploy lands in one place; keep one")
    if not chosen:
        return _gitops(project, None, keep)  # it says which section is missing
    kind, settings = chosen[0]
    return kind.build(project, settings, keep)


def _settings(deploy: DeployConfig, section: str) -> BaseModel | None:
    own = getattr(deploy, section, None) if section in type(deploy).model_fields else None
    return own if isinstance(own, BaseModel) else deploy.section(section)


def _gitops(project: Project[Any], settings: BaseModel | None, keep: bool) -> Target:
    from tagtrail.targets.gitops import GitOpsTarget  # noqa: PLC0415

    return GitOpsTarget(project.config, project.config_path, project.matcher, keep=keep)


def _kubernetes(project: Project[Any], settings: BaseModel, keep: bool) -> Target:
    from tagtrail.targets.kubernetes import KubernetesTarget  # noqa: PLC0415 (lightkube: only here)

    return KubernetesTarget(
        project.config, project.matcher, cluster=project.cluster(), fence=project.fence.check
    )


register(TargetKind("kubernetes", _kubernetes))
register(TargetKind("git", _gitops))
