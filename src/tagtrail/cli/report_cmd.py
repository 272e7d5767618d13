"""`tagtrail report`: delivery insights (the DORA keys and more) from the deploy history, per app and
overall. Git only (no registry, no asyncio); the insights modules are imported inside the command, so the
other commands do not pay for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tagtrail.cli import output
from tagtrail.cli.app import app, state
from tagtrail.cli.output import escape
from tagtrail.config.types import parse_duration
from tagtrail.domain.humanize import share, span
from tagtrail.errors import TagtrailError

if TYPE_CHECKING:
    from pathlib import Path

    from tagtrail.config import Config
    from tagtrail.features.insights import Insights, Measures
    from tagtrail.features.insights.project import DeployFacts


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 3)


def measures_record(m: Measures) -> dict[str, Any]:
    return {
        "app": m.app,
        "deploys": m.deploys,
        "deploys_per_day": round(m.per_day, 4),
        "deploys_per_week": round(m.per_week, 4),
        "lead_time_seconds": {"median": _seconds(m.lead_median), "p90": _seconds(m.lead_p90)},
        "lead_time_samples": m.lead_samples,
        "lead_time_to_running_seconds": {
            "median": _seconds(m.running_median),
            "p90": _seconds(m.running_p90),
        },
        "failures": m.failures,
        "change_failure_rate": m.failure_rate,
        "restores": m.restores,
        "automatic_restores": m.automatic_restores,
        "time_to_restore_seconds": {"median": _seconds(m.restore_median), "p90": _seconds(m.restore_p90)},
        "security_only": m.security,
        "security_only_share": m.security_share,
        "age_seconds": _seconds(m.age),
        "builds_behind": m.behind,
    }


def _table(insights: Insights) -> None:
    table = output.table(
        "APP",
        "DEPLOYS",
        "PER DAY",
        "PER WEEK",
        "LEAD MEDIAN",
        "LEAD P90",
        "FAILURE RATE",
        "RESTORES",
        "RESTORE MEDIAN",
        "AGE",
        "SECURITY-ONLY",
        box=None,
        pad_edge=False,
    )
    for m in (*insights.apps, insights.overall):
        restores = f"{m.restores} ({m.automatic_restores} auto)" if m.automatic_restores else str(m.restores)
        table.add_row(
            escape(m.app or "all apps"),
            str(m.deploys),
            f"{m.per_day:.2f}",
            f"{m.per_week:.1f}",
            span(m.lead_median, empty="-"),
            span(m.lead_p90, empty="-"),
            share(m.failure_rate, empty="-"),
            restores,
            span(m.restore_median, empty="-"),
            span(m.age, empty="-"),
            share(m.security_share, empty="-"),
        )
    output.print_table(table)


@app.command("report")
def report(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", metavar="DURATION", help="The window: 30d, 12w, 48h.")
    ] = "30d",
    app_name: Annotated[
        str | None, typer.Option("--app", metavar="APP", help="Only this app.", show_default=False)
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    env: Annotated[
        str | None,
        typer.Option("--env", metavar="ENV", help="Only this environment (default: each in turn)."),
    ] = None,
) -> None:
    """Delivery insights from the deploy history in git and the decision log: deployment frequency, lead
    time for changes, change failure rate, time to restore, age of what runs and the security-only share,
    per app and overall, each with its definition. Reads no registry. With environments, each one's own:
    the lead time to it and its change failure rate."""
    from tagtrail.config.environments import names, view  # noqa: PLC0415
    from tagtrail.features.insights import DEFINITIONS  # noqa: PLC0415 (lazy: the other commands do not need it)

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    current = state(ctx)
    config = current.config()
    lanes = [env] if env is not None else names(config)
    records, now = {}, datetime.now(UTC)
    for name in lanes:
        facts = _facts(view(config, name), current.project_root())
        insights = facts.insights(window, now, app=app_name)
        if app_name is not None and not insights.apps and not config.environments:
            raise TagtrailError(f"no change of app '{app_name}' in the history of the deploy files")
        if json:
            records[name] = _record(since, insights, facts, DEFINITIONS)
            continue
        if config.environments:
            output.stdout.print(f"[bold]{escape(name)}[/]", highlight=False)
        output.stdout.print(
            f"From {insights.start:%Y-%m-%d %H:%M} to {insights.end:%Y-%m-%d %H:%M} UTC"
            f" ({insights.days:.1f} days)",
            highlight=False,
        )
        _table(insights)
    if json:
        output.print_json(records if config.environments else next(iter(records.values())))
        return
    output.stdout.print("", highlight=False)
    for _, name, text in DEFINITIONS:
        output.stdout.print(f"[bold]{name}[/]: {escape(text)}", highlight=False)


def _facts(config: Config, root: Path) -> DeployFacts:
    """One environment's deploy history, read from its deploy files in git."""
    from tagtrail.features.insights.project import read_facts  # noqa: PLC0415
    from tagtrail.targets.factory import decision_log  # noqa: PLC0415
    from tagtrail.targets.workcopy import WorkingCopies  # noqa: PLC0415

    if config.deploy.git is None:
        raise TagtrailError("tagtrail.yaml has no deploy.git section: report reads the deploy history in git")
    copies = WorkingCopies(config.deploy.git, root)
    copy = copies.open(for_commit=False)
    try:
        return read_facts(config, copy.repo, copies.source(), decision_log(config))
    finally:
        copies.close(copy)


def _record(since: str, insights: Insights, facts: DeployFacts, definitions: Any) -> dict[str, Any]:
    return {
        "since": since,
        "start": insights.start,
        "end": insights.end,
        "days": round(insights.days, 4),
        "overall": measures_record(insights.overall),
        "apps": [measures_record(m) for m in insights.apps],
        "definitions": {key: {"name": name, "definition": text} for key, name, text in definitions},
        "read": {
            "commits": facts.reading.commits,
            "from_trailers": facts.reading.from_trailers,
            "diffed": facts.reading.diffed,
        },
    }
