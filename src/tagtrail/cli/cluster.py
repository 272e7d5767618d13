"""What runs in the cluster, and whether deploy.git.applied_by applied the deploy commit, as `status` and
`deploy --wait` show them (table column and --json)."""

from __future__ import annotations

from tagtrail import reconcile
from tagtrail.cli import output
from tagtrail.cli.output import escape
from tagtrail.domain.humanize import span
from tagtrail.reconcile.applied import Applying
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


def applying_record(applying: Applying) -> dict[str, object]:
    """Whether deploy.git.applied_by applied the deploy commit, for --json."""
    return {
        "commit": applying.commit,
        "state": applying.state,
        "message": applying.message or None,
        "permalink": applying.permalink,
        "rolled_back": applying.rolled_back,
    }


def applying_text(applying: Applying | None) -> str:
    """`applied`, `pending`, `not-applied` or `failed: <message>`, with the update's permalink."""
    if applying is None:
        return "-"
    text = f"failed: {applying.message}" if applying.state == "failed" else applying.state
    return f"{text} {applying.permalink}" if applying.permalink else text


def print_applying(applying: Applying | None) -> None:
    """deploy --wait: whether the Stack applied the deploy commit."""
    if applying is not None:
        mark = "[green]✓[/]" if applying.state == "applied" else "[red]✗[/]"
        back = "".join(f"; {a} rolled back to {t} and pinned" for a, t in applying.rolled_back.items())
        sentence = f"{applying.commit[:12]}: {applying.sentence}{back}"
        output.stderr.print(f"{mark} applied: {escape(sentence)}", highlight=False)


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
