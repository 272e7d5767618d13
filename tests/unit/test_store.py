"""The SQLite store: files written by earlier versions open, both tables live in one file, and a file that
cannot be used is a warning, never an error (the deploy history is in git)."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tagtrail.adapters.baseimages.rebuild import Ledger
from tagtrail.adapters.history import DecisionLog, DecisionRecord

DIGEST = "sha256:" + "3" * 64
# The decision log as tagtrail wrote it before the store numbered its schema; `automatic` came later.
_DECISIONS = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, app TEXT NOT NULL, action TEXT NOT NULL,
    reason TEXT NOT NULL, sentence TEXT NOT NULL, running TEXT, target TEXT, actor TEXT NOT NULL,
    candidates INTEGER NOT NULL, ignored TEXT NOT NULL, requests INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL, "commit" TEXT, outcome TEXT{automatic}
);
CREATE INDEX IF NOT EXISTS decisions_by_app ON decisions (app, id);
"""
_LEDGER = """
CREATE TABLE IF NOT EXISTS base_rebuilds (
    app TEXT NOT NULL, base_digest TEXT NOT NULL, started TEXT NOT NULL, via TEXT NOT NULL,
    PRIMARY KEY (app, base_digest)
);
"""
_ROW = (
    "INSERT INTO decisions (time, app, action, reason, sentence, running, target, actor, candidates, ignored,"
    " requests, duration_ms, \"commit\", outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 3, '{}', 2, 5, ?, ?)"
)


def _written_before(path: Path, *, automatic: bool, ledger: bool = True) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        column = ",\n    automatic INTEGER NOT NULL DEFAULT 0" if automatic else ""
        db.executescript(_DECISIONS.format(automatic=column) + (_LEDGER if ledger else ""))
        when = datetime(2025, 10, 14, 5, 10, tzinfo=UTC).isoformat()
        for actor in ("tagtrail serve", "tagtrail deploy"):
            target = f"r/web:main.1@{DIGEST}"
            db.execute(
                _ROW, (when, "web", "deploy", "newer-build", "s", "r/web:old", target, actor, "c0", "pushed")
            )
        if ledger:
            db.execute("INSERT INTO base_rebuilds VALUES ('web', ?, ?, 'github')", (DIGEST, when))


@pytest.mark.parametrize("automatic", [True, False], ids=["today", "before-automatic"])
def test_a_file_an_earlier_version_wrote_opens_with_its_rows(tmp_path: Path, automatic: bool) -> None:
    path = tmp_path / "decisions.sqlite"
    _written_before(path, automatic=automatic)
    log = DecisionLog(path)
    assert [(r.app, r.actor, r.outcome) for r in log.recent()] == [
        ("web", "tagtrail deploy", "pushed"),
        ("web", "tagtrail serve", "pushed"),
    ]
    # before the column, the controller's actor name said which deploys were its own
    assert [r.automatic for r in log.recent()] == ([False, False] if automatic else [False, True])
    assert log.digests_seen() == {"r/web:main.1": DIGEST}
    log.record(DecisionRecord("api", "nothing", "up-to-date", "s", None, None, "tagtrail plan"))
    assert log.last("api") is not None
    assert Ledger(path).started() == [("web", DIGEST, "github")]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_decision_log_and_the_ledger_share_one_file_whichever_came_first(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_LEDGER)  # a ledger written before any decision
    ledger, log = Ledger(path), DecisionLog(path)
    assert log.recent() == []
    assert ledger.claim("web", DIGEST, "local") is True
    log.record(
        DecisionRecord("web", "deploy", "base-image", "s", None, None, "tagtrail serve", automatic=True)
    )
    assert [r.reason for r in log.recent()] == ["base-image"]
    assert ledger.started() == [("web", DIGEST, "local")]


def test_a_file_that_is_not_a_database_is_a_warning_and_nothing_more(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "decisions.sqlite"
    path.write_bytes(b"not a database, " * 100)
    log, ledger = DecisionLog(path), Ledger(path)
    with caplog.at_level(logging.WARNING, logger="tagtrail"):
        assert log.recent() == []
        log.record(DecisionRecord("web", "nothing", "up-to-date", "s", None, None, "tagtrail plan"))
        assert ledger.claim("web", DIGEST, "local") is False
        assert ledger.started() == []
    assert [r.getMessage().split(f"{path} ")[1].split(" (")[0] for r in caplog.records] == [
        "cannot be read",
        "cannot be written",
        "cannot be written",
        "cannot be read",
    ]
    assert caplog.records[1].getMessage().endswith("; the deploy history in git is unaffected")
    assert caplog.records[2].getMessage().endswith(": web is not rebuilt")
    assert path.read_bytes() == b"not a database, " * 100


def test_a_log_that_does_not_exist_is_read_as_empty_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "decisions.sqlite"
    assert (DecisionLog(path).recent(), DecisionLog(path).digests_seen(), Ledger(path).started()) == (
        [],
        {},
        [],
    )
    assert not path.parent.exists()


def test_every_question_of_the_log_is_valid_sql_and_stays_in_its_environment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A read that fails is only a warning (the deploy history is in git), so a query broken by a change of
    the schema would pass unseen, answering nothing: each question is asked of a log with rows in two
    environments, and none warns or sees the other's rows."""
    staging = DecisionLog(tmp_path / "decisions.sqlite", "staging")
    prod = staging.of("prod")
    for log, commit in ((staging, "a" * 40), (prod, "b" * 40)):
        log.record(
            DecisionRecord(
                "web",
                "deploy",
                "newer-build",
                "s",
                "r",
                "t",
                "tagtrail serve",
                commit=commit,
                outcome="pushed",
                automatic=True,
            ),
            DecisionRecord("web", "apply", "applied", "s", None, None, "tagtrail serve", commit=commit),
        )
    with caplog.at_level(logging.WARNING):
        answers = {
            "recent": [r.commit for r in prod.recent("web")],
            "last_each": [r.commit for r in prod.last_each().values()],
            "last_each acted": [r.commit for r in prod.last_each(acted=True).values()],
            "outcomes": [r.commit for r in prod.outcomes()],
            "last_applies": [r.commit for r in prod.last_applies().values()],
            "applied_commits": list(prod.applied_commits()),
            "last": [r.commit for r in [prod.last("web")] if r is not None],
            "last_automatic_deploys": list(prod.last_automatic_deploys()),
            "automatic_rollback_commits": list(prod.automatic_rollback_commits()),
            "digests_seen": list(prod.digests_seen()),
        }
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert all("a" * 40 not in commits for commits in answers.values())
    assert answers["last_applies"] == answers["applied_commits"] == ["b" * 40]
    assert answers["last_automatic_deploys"] == ["web"]
