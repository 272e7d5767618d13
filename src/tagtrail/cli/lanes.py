"""The environments a command works on: every one in order (plan, deploy, status), or the one `--env`
names (rollback, pin, unpin, history, promote), which a config of one environment need not name."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from tagtrail.cli import output
from tagtrail.cli.app import State
from tagtrail.cli.output import escape
from tagtrail.cli.planned import planned_record
from tagtrail.config.environments import names
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Planned, Reconciler

T = TypeVar("T")
EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env", metavar="ENV", help="The environment (environments:); needed where there are several."
    ),
]


def run_each(
    current: State, work: Callable[[Reconciler], Awaitable[T]], only: str | None = None
) -> list[tuple[str, T]]:
    """`work` on each environment's reconciler in the order builds go through them (or on `only`), one
    after the other: a lane reads what the one before it has just done (the one place the CLI enters
    asyncio)."""
    config = current.config()
    path = (current.config_path or current.project_root() / "tagtrail.yaml").resolve()
    if only is not None and only not in names(config):
        raise TagtrailError(
            f"no environment '{only}' in tagtrail.yaml (environments: {', '.join(names(config))})"
        )

    async def main() -> list[tuple[str, T]]:
        async with Reconciler.open_lanes(config, path) as lanes:
            done = []
            for lane in lanes:
                if only is None or lane.project.environment == only:
                    done.append((lane.project.environment, await work(lane)))
            return done

    return asyncio.run(main())


def run_one(current: State, work: Callable[[Reconciler], Awaitable[T]], env: str | None) -> T:
    """`work` on the environment `env` names; without it, the only one (several: an error saying so)."""
    lanes = names(current.config())
    if env is None and len(lanes) > 1:
        raise TagtrailError(f"there are several environments ({', '.join(lanes)}): say which with --env ENV")
    return run_each(current, work, env or lanes[0])[0][1]


def lanes_view(lanes: list[tuple[str, list[Planned]]], json: bool) -> None:
    """Each app in one row across the environments: what runs in each, and what waits there and why (a
    gate's reason, with the time left in a soak); as JSON, one object per app with its environments."""
    by_app: dict[str, dict[str, Planned]] = {}
    for name, planned in lanes:
        for item in planned:
            by_app.setdefault(item.app, {})[name] = item
    if json:
        output.print_json(
            [
                {"app": app, "environments": {name: planned_record(p) for name, p in seen.items()}}
                for app, seen in by_app.items()
            ]
        )
        return
    table = output.table("APP", *(name.upper() for name, _ in lanes), box=None, pad_edge=False)
    for app, seen in by_app.items():
        table.add_row(app, *(escape(_cell(seen.get(name))) for name, _ in lanes))
    output.print_table(table)


def _cell(item: Planned | None) -> str:
    """What runs, and what comes or waits: 'main.1 → main.2 (promoted)', 'main.1, soaking: … 20m left'."""
    if item is None:
        return "-"
    d = item.decision
    running = d.running.tag or "nothing"
    if d.action == "deploy" and d.target_tag:
        return f"{running} → {d.target_tag} ({d.reason})"
    if d.action == "hold":
        return f"{running}; {d.reason}: {d.sentence}"
    return running
