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
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "A registry" in out
    assert "$ tagtrail config check" in out
    assert "$ tagtrail tag parse" in out
    assert "feature-login" in out  # a feature-branch build, read back with its branch
    assert "buildcache" in out
    assert "not of the scheme" in out
    assert "demo done: 12 images pushed" in out
    assert "Traceback" not in result.stderr
    # The registry was stopped: nothing is left listening from this run.
    assert (
        tmp_path / "demo" / "registry" / "storage" / "docker/registry/v2/repositories/homelab/web"
    ).is_dir()
