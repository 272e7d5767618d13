"""The README's main command: `tagtrail demo` runs end to end against a real registry and real git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tagtrail", "demo", *args, "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in (
        "$ tagtrail apps",
        "$ tagtrail build --push",
        "$ tagtrail plan",
        "$ tagtrail deploy",
        "$ tagtrail status",
        "$ tagtrail rollback worker",
        "$ tagtrail unpin worker",
        "$ tagtrail history worker",
    ):
        assert step in out, step
    assert "feature-login." in out  # a feature-branch build, pushed and never deployed
    assert "hold    pinned at" in out
    assert "images built with buildah" in out  # buildah works here (chroot isolation, vfs)
    assert "5 deploy commits made and pushed" in out
    assert "Traceback" not in result.stderr
    remote = tmp_path / "demo" / "remote" / "homelab.git"
    log = subprocess.run(
        ["git", "log", "--format=%s", "main"], cwd=remote, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert [line.split(":")[0] for line in log[:4]] == ["deploy", "unpin", "rollback", "deploy"]


def test_the_environments_demo_promotes_a_good_build_and_stops_a_bad_one(tmp_path: Path) -> None:
    result = demo(tmp_path, "--environments")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "soaks in staging" in out
    assert "Tagtrail-Promoted-From: staging" in out
    assert "$ tagtrail rollback worker --env staging" in out
    assert "failed in staging: rollback to" in out
    assert "Traceback" not in result.stderr
    stack = subprocess.run(
        ["git", "show", "main:pulumi/Pulumi.prod.yaml"],
        cwd=tmp_path / "demo" / "remote" / "homelab.git",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    last_worker = [line for line in out.splitlines() if "pushed 127.0.0.1" in line and "/worker:" in line][-1]
    assert last_worker.split("/worker:")[1].split("@")[0] not in stack  # prod never got the bad build
