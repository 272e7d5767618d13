"""What `plan`, `deploy` and `status` print of planned decisions: one JSON record each, the plan's table, and
every refused candidate with its reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tagtrail.cli import output
from tagtrail.cli.output import escape
from tagtrail.domain.humanize import age
from tagtrail.domain.scheme import ParsedTag
from tagtrail.reconcile import Planned


def short_age(moment: datetime | None) -> str:
    return age(moment, empty="-")


def _build(parsed: ParsedTag | None, tag: str | None, digest: str | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    built = max(parsed.instants) if parsed and parsed.instants else None
    return {
        "tag": tag,
        "digest": digest,
        "commit": parsed.sha if parsed and parsed.sha else None,
        "branch": parsed.branch if parsed and parsed.branch else None,
        "built": output.iso(built),
        "age": short_age(built) if built else None,
    }


def planned_record(item: Planned) -> dict[str, Any]:
    d = item.decision
    return {
        "app": d.app,
        "action": d.action,
        "reason": d.reason,
        "sentence": d.sentence,
        "running": _build(d.running_parsed, d.running.tag, d.running.digest),
        "target": _build(d.target, d.target_tag, item.digest),
        "built_from": item.built_from,
        "behind": d.behind,
        "candidates": item.tags_seen,
        "ignored": d.ignored,
        "refused": [{"tag": r.tag, "reason": str(r.code), "sentence": r.sentence} for r in d.refusals],
        "requests": item.requests,
        "duration_ms": item.duration_ms,
        "pending_review": None
        if item.review is None
        else {"number": item.review.number, "url": item.review.url},
    }


def plan_table(planned: list[Planned]) -> None:
    table = output.table("APP", "RUNNING", "NEWEST ELIGIBLE", "ACTION", "WHY", box=None, pad_edge=False)
    style = {"deploy": "[bold green]deploy[/]", "hold": "[yellow]hold[/]", "nothing": "nothing"}
    for item in planned:
        d = item.decision
        running = d.running.tag or "-"
        target = (
            d.target_tag
            if d.target_tag and d.target_tag != d.running.tag
            else ("same" if d.target_tag else "-")
        )
        table.add_row(d.app, escape(running), escape(target), style[d.action], escape(d.sentence))
    output.print_table(table)
    say_refusals(planned)


def say_refusals(planned: list[Planned]) -> None:
    """Each candidate whose claims were not believed, with its reason (DESIGN invariant 9)."""
    for item in planned:
        for refusal in item.decision.refusals:
            output.stderr.print(
                f"{item.app}: refused {refusal.code}: {refusal.sentence}", markup=False, highlight=False
            )
