"""The checks of `environments:` made while the config is validated, below the schema (`model.py` calls
them; they know a lane only by the fields they read): the order of the lanes, and one target each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

_TARGETS = ("git", "kubernetes")  # the schema's own target sections; registered ones are in _sections


class Lane(Protocol):
    @property
    def take_from(self) -> str | None: ...


def lane_order(environments: Mapping[str, Lane]) -> list[str]:
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


def one_target_each(config: Any) -> None:
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


def target_sections(deploy: Any) -> list[str]:
    """The target sections written in `deploy` (git:, kubernetes:, a registered kind's)."""
    return [s for s in _TARGETS if getattr(deploy, s) is not None] + list(deploy._sections)
