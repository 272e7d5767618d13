"""The decision log of each environment: one file, each row naming its environment; a file from before
environments opens with its rows in the one lane of a single deploy:."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tagtrail.adapters.history import DecisionLog, DecisionRecord

DIGEST = "sha256:" + "4" * 64


def _deploy(app: str, target: str) -> DecisionRecord:
    return DecisionRecord(
        app, "deploy", "newer-build", "s", None, target, "tagtrail serve", commit="c1", outcome="pushed",
        automatic=True,
    )  # fmt: skip


def test_each_environment_reads_only_its_own_rows(tmp_path: Path) -> None:
    staging = DecisionLog(tmp_path / "d.sqlite", "staging")
    prod = staging.of("prod")
    staging.record(_deploy("web", f"r/web:main.2@{DIGEST}"))
    prod.record(_deploy("web", f"r/web:main.1@{DIGEST}"))
    assert [r.target for r in staging.recent("web")] == [f"r/web:main.2@{DIGEST}"]
    assert [r.target for r in prod.recent("web")] == [f"r/web:main.1@{DIGEST}"]
    assert prod.last_each()["web"].target == f"r/web:main.1@{DIGEST}"
    assert set(staging.last_automatic_deploys()) == set(prod.last_automatic_deploys()) == {"web"}
    assert DecisionLog(tmp_path / "d.sqlite").recent() == []  # the single deploy: lane has none


def test_a_file_written_before_environments_keeps_its_rows_in_the_default_lane(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    DecisionLog(path).record(_deploy("web", f"r/web:main.1@{DIGEST}"))
    with sqlite3.connect(path) as db:  # as version 1 left it: no environment column
        db.execute("DROP INDEX decisions_by_environment")
        db.execute("ALTER TABLE decisions DROP COLUMN environment")
        db.execute("PRAGMA user_version = 1")
    assert [r.target for r in DecisionLog(path).recent()] == [f"r/web:main.1@{DIGEST}"]
    assert DecisionLog(path, "prod").recent() == []
