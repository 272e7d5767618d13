"""The README's cluster demo (`./scripts/demo-cluster` runs scripts/demo_cluster.py after the installs) runs
end to end on the real control plane: a deploy rolled out, a bad build rolled back and pinned; a deploy
commit the Pulumi operator's Stack applied, and one it failed on, reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]


def test_the_cluster_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo_cluster.py"), "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in (
        "$ tagtrail status",
        "$ tagtrail deploy",
        "$ tagtrail history web",
        "$ kubectl -n shop get events",
    ):
        assert step in out, step
    assert "rollout of web: complete 2/2 ready" in out
    assert "progress deadline exceeded" in out
    assert "(rolled back)" in out
    assert "rollout-failed" in out
    assert "TagtrailRollback" in out
    # the Pulumi operator path (issue 30): one deploy commit applied by the Stack, one it failed on
    assert "the Stack applied it" in out
    assert "the Stack failed to apply it: error: update failed" in out
    assert "failed: error: update failed" in out  # status's APPLIED column
    assert "Traceback" not in result.stderr
