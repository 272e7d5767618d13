"""Environments (`environments:`), the lanes a build goes through: their order, and each one's view of the
config. A lane's view is the whole config with `deploy:` replaced by the lane's own: deploy:'s settings with
the lane's overrides on top (per-app settings and pins merged app by app), and the lane's target section
only. A config with a single `deploy:` is one lane, `DEFAULT`, whose view is the config itself."""

from __future__ import annotations

from typing import Any

from tagtrail.config.lanes import lane_order
from tagtrail.config.model import Config, EnvironmentConfig
from tagtrail.errors import TagtrailError

DEFAULT = "default"  # the one environment of a config with a single deploy:
_LANE_ONLY = ("take_from", "soak", "approval", "namespaces")


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
    cluster = config.kubernetes
    if cluster is not None and env.namespaces:  # this environment's workloads only
        cluster = cluster.model_copy(update={"namespaces": list(env.namespaces)})
    seen = config.model_copy(update={"deploy": deploy, "kubernetes": cluster})
    seen._lane = name
    return seen


def branches_of_any(config: Config, app: str) -> tuple[str, ...]:
    """The branches any environment deploys `app` from, in lane order: a build one of them takes is one to
    look at (a webhook's) and one to judge as a deploy branch's (retention), where an environment's
    `branch:` differs from deploy:'s."""
    lanes = [view(config, name).deploy for name in names(config)]
    return tuple(dict.fromkeys(branch for deploy in lanes for branch in deploy.branches_of(app)))


def deploy_place(config: Config) -> tuple[str, ...]:
    """Where the view's deploy: is written in tagtrail.yaml, for an error at its line."""
    return ("environments", config._lane) if config._lane else ("deploy",)


def lane_of(config: Config) -> EnvironmentConfig | None:
    """The environment settings of a view (its `from`, soak and approval); None for a single deploy:."""
    return config.environments.get(config._lane) if config._lane else None


def lane_name(config: Config) -> str | None:
    """The environment a view is of; None for a single deploy: (its pins are deploy:'s)."""
    return config._lane
