"""The README's main command: `tagtrail demo` runs end to end against a real registry and real git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tagtrail", "demo", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
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
