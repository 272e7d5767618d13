"""What runs in the cluster, as `status` shows it (table column and --json)."""

from __future__ import annotations

from tagtrail import reconcile
from tagtrail.cli import output
from tagtrail.cli.output import escape
from tagtrail.domain.humanize import span
from tagtrail.reconcile.follow import Followed
from tagtrail.targets.base import Applied


def cluster_record(r: reconcile.AppStatus) -> dict[str, object]:
    """What runs in the cluster, for status --json."""
    view = r.cluster
    assert view is not None  # noqa: S101 (only asked where the cluster is observed)
    return {
        "images": view.images,
        "running": view.running,
        "ready": view.ready,
        "total": view.total,
        "rollout": view.rollout,
        "drift": r.drift,
        "rollout_finished": output.iso(view.finished) if view.finished else None,
        "lead_time_seconds": r.lead_time.total_seconds() if r.lead_time is not None else None,
        "workloads": [
            {
                "ref": w.workload.ref,
                "rollout": w.progress.state,
                "ready": w.progress.ready,
                "total": w.progress.total,
            }
            for w in view.workloads
        ],
    }


def cluster_text(r: reconcile.AppStatus) -> str:
    """ready/total, the rollout where it is not complete, and drift, for the status table."""
    view = r.cluster
    if view is None or not view.workloads:
        return r.drift or "-"
    text = f"{view.ready}/{view.total} ready"
    if view.rollout != "complete":
        text += f", {view.rollout}"
    if r.drift:
        text += f"; DRIFT: {r.drift}"
    elif r.lead_time is not None:
        text += f", running {span(r.lead_time)} after its commit"
    return text


def print_followed(followed: list[Followed]) -> None:
    """deploy --wait: whether the cluster runs what was deployed, per app."""
    for f in followed:
        mark = "[green]✓[/]" if f.ok else "[red]✗[/]"
        output.stderr.print(f"{mark} cluster: {f.app}: {escape(f.sentence)}", highlight=False)


def written(applied: Applied) -> str:
    """What a deploy wrote: a commit (pushed or not), or a workload patched (direct mode)."""
    assert applied.commit is not None  # noqa: S101 (asked only when something was written)
    if applied.kind == "patch":
        return f"patched {applied.commit}"
    return f"{applied.commit[:12]} {'pushed' if applied.pushed else 'committed (not pushed)'}"
