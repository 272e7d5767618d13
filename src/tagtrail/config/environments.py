"""Environments (`environments:`), the lanes a build goes through: their order, and each one's view of the
config. A lane's view is the whole config with `deploy:` replaced by the lane's own: deploy:'s settings with
the lane's overrides on top (per-app settings and pins merged app by app), and the lane's target section
only. A config with a single `deploy:` is one lane, `DEFAULT`, whose view is the config itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from tagtrail.errors import TagtrailError

if TYPE_CHECKING:
    from tagtrail.config.model import Config, DeployConfig, EnvironmentConfig

DEFAULT = "default"  # the one environment of a config with a single deploy:
_TARGETS = ("git", "kubernetes")  # the schema's own target sections; registered ones are in _sections
_LANE_ONLY = ("take_from", "soak", "approval")


def lane_order(environments: Mapping[str, EnvironmentConfig]) -> list[str]:
    """The environments in the order builds go through them: each after the one it takes from, otherwise
    as written. An unknown `from` or a cycle is a validation error at that `from`."""
    for name, env in environments.items():
        if env.take_from is not None and env.take_from not in environments:
            known = ", ".join(n for n in environments if n != name) or "none"
            _refuse(name, "unknown", f"no environment '{env.take_from}' to take builds from (known: {known})")
        seen = [name]
        step = env.take_from
        while step is not None:
            if step in seen:
                loop = " → ".join([*seen, step])
                _refuse(name, "cycle", f"environments take builds from each other in a circle: {loop}")
            seen.append(step)
            step = environments[step].take_from
    placed: list[str] = []
    while len(placed) < len(environments):
        placed += [
            n
            for n, e in environments.items()
            if n not in placed and (e.take_from is None or e.take_from in placed)
        ][:1]
    return placed


def _refuse(name: str, kind: str, message: str) -> None:
    raise ValidationError.from_exception_data(
        "environments",
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=(name, "from"), input=name)],
    )


def one_target_each(config: Config) -> None:
    """deploy: or each environment lands in one place, and a cluster target says how to reach the cluster;
    with environments, deploy: holds only what they share."""
    if config.environments and (own := target_sections(config.deploy)):
        raise ValidationError.from_exception_data(
            "Config",
            [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "environments",
                        "deploy.{section} and environments: are both set: with environments, each says"
                        " where its deploys land; move it into one",
                        {"section": own[0]},
                    ),
                    loc=("deploy", own[0]),
                    input=None,
                )
            ],
        )
    for where, deploy in [("deploy", config.deploy), *config.environments.items()]:
        place = where if where == "deploy" else f"environments.{where}"
        if deploy.kubernetes is None:
            continue
        if deploy.git is not None:
            raise ValueError(
                f"{place}.git and {place}.kubernetes are both set: a deploy lands in one place; keep one"
            )
        if config.kubernetes is None:
            raise ValueError(
                f"{place}.kubernetes needs a kubernetes: section saying how to reach the cluster"
            )


def target_sections(deploy: DeployConfig) -> list[str]:
    """The target sections written in `deploy` (git:, kubernetes:, a registered kind's)."""
    return [s for s in _TARGETS if getattr(deploy, s) is not None] + list(deploy._sections)


def names(config: Config) -> list[str]:
    """The config's environments in order; [DEFAULT] for a single deploy:."""
    return lane_order(config.environments) if config.environments else [DEFAULT]


def view(config: Config, name: str) -> Config:
    """The config as the environment `name` deploys with (the config itself for DEFAULT)."""
    if not config.environments and name == DEFAULT:
        return config
    if name not in config.environments:
        known = ", ".join(names(config))
        raise TagtrailError(f"no environment '{name}' in tagtrail.yaml (environments: {known})")
    env, base = config.environments[name], config.deploy
    update: dict[str, Any] = {
        field: getattr(env, field) for field in env.model_fields_set if field not in _LANE_ONLY
    }
    if "apps" in update:
        update["apps"] = {**base.apps, **env.apps}
    if "pins" in update:
        update["pins"] = {**base.pins, **env.pins}
    deploy = base.model_copy(update=update)
    deploy._sections = dict(env._sections)
    seen = config.model_copy(update={"deploy": deploy})
    seen._lane = name
    return seen


def deploy_place(config: Config) -> tuple[str, ...]:
    """Where the view's deploy: is written in tagtrail.yaml, for an error at its line."""
    return ("environments", config._lane) if config._lane else ("deploy",)
