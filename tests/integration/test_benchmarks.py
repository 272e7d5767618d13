"""The benchmarks still run and still measure the right thing (tiny sizes; their speed goals are checked
by ./scripts/bench, never here)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bench.behind import logging_git
from tagtrail_demo import ImagePusher, RegistryServer

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_registry_scan_agrees_with_skopeo_on_a_tiny_case(tmp_path: Path) -> None:
    bench = load("registry_scan")
    rows = bench.run_case(3, 40, 0.3, 1, tmp_path)
    assert [row.tool for row in rows] == ["tagtrail", "tagtrail warm", "skopeo loop"]
    assert rows[0].requests == 3 * 2  # one tag list and one HEAD per repository
    assert rows[2].requests > rows[0].requests


def test_writeback_is_byte_exact_and_the_dump_is_not(capsys: object, monkeypatch: object) -> None:
    bench = load("writeback")
    monkeypatch.setattr(sys, "argv", ["writeback", "--references", "12", "--runs", "1"])  # type: ignore[attr-defined]
    assert bench.main() == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "tagtrail span rewrite" in out
    assert "none" in out.splitlines()[2]  # tagtrail changed no other byte
    assert "lines differ" in out  # the load-and-dump does


def test_deploy_benchmark_on_a_small_homelab(capsys: object, monkeypatch: object, tmp_path: Path) -> None:
    bench = load("deploy")
    monkeypatch.setattr(sys, "argv", ["deploy", "--tags", "25"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    assert bench.main() == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "tagtrail deploy (plan+commit+push)" in out
    assert "equals tagtrail's" in out


def test_push_to_deploy_benchmark_measures_webhook_deploys(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("push_to_deploy")
    monkeypatch.setattr(sys, "argv", ["push_to_deploy", "--pushes", "3", "--tags", "20"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    bench.main()  # its exit code is the speed goals: ./scripts/bench's business, not a test's
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines() if line.strip()}
    assert "floor (tag list, HEAD, commit, push)" in lines
    assert "tagtrail serve + registry webhook" in lines  # every push was deployed through the webhook
    assert "idle RSS of tagtrail serve with 50 apps" in out


def test_loop_latency_probes_a_serve_that_reconciles(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("loop_latency")
    monkeypatch.setattr(sys, "argv", ["loop_latency", "--quick"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    assert bench.main() == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    row = next(line for line in out.splitlines() if line.startswith("this tree"))
    probes, reconciles, commits = (float(row.split()[i]) for i in (2, 6, 7))
    assert probes > 50  # /healthz answered all along
    assert reconciles >= 2  # while serve reconciled, and deployed
    assert commits >= 2


def test_provenance_benchmark_costs_nothing_in_the_steady_state(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("provenance")
    monkeypatch.setattr(sys, "argv", ["provenance", "--quick"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    assert bench.main() == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    # scenario (40 columns), then checks, requests, fetches, seconds, outcome
    rows = [
        (line[:40].strip(), *line[40:].split()[:3]) for line in out.splitlines() if line[:1] in ("s", "o")
    ]
    steady = [r for r in rows if r[0].startswith("steady state")]
    assert len(steady) == 5
    assert all(r[2:] == ("5", "0") for r in steady)  # five tag lists, no fetch: checks on or off
    assert ("one new build: plan", "on", "7", "1") in rows  # the new build: its config read, one fetch
    assert ("one new build: plan", "off", "6", "0") in rows
    assert "0 request(s) beyond the 5 tag lists, 0 git fetch(es)" in out


def test_keyless_provenance_costs_nothing_once_a_build_is_verified(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("provenance")
    monkeypatch.setattr(sys, "argv", ["provenance", "--quick", "--keyless"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    assert bench.main() == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    rows = [
        (line[:40].strip(), *line[40:].split()[:2])
        for line in out.splitlines()
        if line[:1] in ("s", "o", "t")
    ]
    assert ("steady state after it", "on", "5") in rows  # the tag lists alone
    assert ("the same build: plan again", "on", "6") in rows  # verified once: as cheap as not verifying
    assert ("the same build: plan again", "off", "6") in rows
    assert "once verified, a build costs 0 request(s) more than without" in out


def test_report_benchmark_counts_every_generated_change(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("report")
    monkeypatch.setattr(sys, "argv", ["report", "--quick"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    assert bench.main() == 0  # the report counted every deploy and restore the generator made
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "tagtrail report (whole process)" in out
    assert "GET /insights, cached" in out
    assert "300 deploy commits" in out


def test_prune_benchmark_counts_the_requests_of_a_plan(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("prune")
    monkeypatch.setattr(sys, "argv", ["prune", "--quick"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    assert bench.main() == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    rows = {line[:22].strip(): line.split() for line in out.splitlines() if line.startswith("R=")}
    deleting, kept = rows["R=2 T=50"], rows["R=2 T=50 all kept"]
    assert int(deleting[-3]) == 2 * 50  # one HEAD per tag: a digest shared with a kept tag must be seen
    assert int(deleting[-2]) < 50  # one GET per distinct manifest, not per tag
    assert (int(kept[-6]), int(kept[-4])) == (2, 2)  # all kept: the tags alone decide, one tag list each


def test_kube_benchmark_measures_both_modes_and_counts_requests(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load("kube")
    monkeypatch.setattr(sys, "argv", ["kube", "--quick"])
    assert bench.main() == 0
    out = capsys.readouterr().out
    assert "| direct: Deployment spec has the digest |" in out
    assert "| GitOps: deploy commit on the remote    |" in out
    assert "API requests with 5 apps" in out


def test_a_base_image_check_costs_one_head_per_distinct_base(tmp_path: Path) -> None:
    bench = load("base_images")
    rows = {row.poll: row for row in bench.run_case(9, 2, 2, tmp_path)}
    assert [(rows[p].heads, rows[p].gets) for p in ("steady 1", "steady 2", "steady after")] == [(2, 0)] * 3
    assert (rows["first"].heads, rows["first"].gets) == (2, 18)  # each app's record, once
    assert (rows["base0 moved"].heads, rows["base0 moved"].gets, rows["base0 moved"].moved) == (2, 2, 5)
    assert rows["per-app HEADs"].heads == 9  # the baseline: one per app


def test_cli_benchmark_times_whole_processes_beside_their_baselines(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("cli")
    monkeypatch.setattr(sys, "argv", ["cli", "--quick", "--runs", "1"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    bench.main()  # its exit code is the speed goals: ./scripts/bench's business, not a test's
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    # case (12 columns), tool (28), then wall s, requests, req/repo, peak RSS, ratio
    rows = {line[13:41].strip(): line[41:].split() for line in out.splitlines() if line.startswith("8 x 200")}
    ours, theirs = rows["tagtrail plan --json"], rows["skopeo list-tags + inspect"]
    assert ours[1:3] == ["16", "2.00"]  # a tag list and the winner's manifest (its revision annotated)
    assert int(theirs[1]) > int(ours[1])  # skopeo counted at the same registry's log
    assert rows["floor: bare Python script"][1:3] == rows["floor: bare httpx script"][1:3] == ["16", "2.00"]
    assert ours[4] == "MiB"  # plan's peak RSS was read
    for command in (
        "python -c pass",
        "tagtrail --version",
        "tagtrail tag",
        "tagtrail tag parse",
        "tagtrail apps",
    ):
        assert any(line.startswith(command) for line in out.splitlines()), command
    assert "tagtrail config check:" in out  # each start-up goal is judged
    steady = next(line for line in out.splitlines() if line.startswith("steady-state poll")).split()
    assert steady[-1] == "8"  # as tagtrail serve polls: one tag list per app, nothing else
    assert "CPU seconds per steady-state reconcile of 8 apps" in out
    assert "idle RSS of tagtrail serve with 8 apps" in out


def test_the_behind_benchmark_counts_git_and_agrees_with_skopeo(
    tmp_path: Path, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25's cases at tiny sizes: plans far behind, from bootstrap, builds refused on every poll, and
    through a delaying proxy; each plan's choice checked against the skopeo loop, git processes counted."""
    bench = load("behind")
    folder, log = logging_git(tmp_path / "logging-git")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    run = bench.Bench(registry, log, runs=1)
    with ImagePusher(registry.url) as pusher:
        bench.first_adoption(run, tmp_path, pusher, 10)
        bench.refused(run, tmp_path, pusher, 10)
        bench.latency(run, tmp_path, pusher, 2, 10)
    tools = [(row.case, row.tool) for row in run.rows]
    assert ("8 x 10, 9 behind", "tagtrail plan --json, bootstrap") in tools
    # the goal is 10; the base-image reason's one diff-tree for every deploying app makes 11 (see the README)
    assert all(row.git <= 11 for row in run.rows if row.tool == "tagtrail plan --json"), run.rows
    assert len(run.goals) == 3
    assert len(run.notes) == 2


def test_environments_benchmark_promotes_a_push_to_prod(
    capsys: object, monkeypatch: object, tmp_path: Path
) -> None:
    bench = load("environments")
    monkeypatch.setattr(sys, "argv", ["environments", "--apps", "3", "--tags", "2"])  # type: ignore[attr-defined]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # type: ignore[attr-defined]
    assert bench.main() == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "the push reached prod in 1 reconcile(s) (goal met" in out
