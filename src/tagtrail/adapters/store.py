"""The one SQLite file tagtrail keeps (`serve.decision_log`): its schema and migrations, WAL, and one error
policy. Its tables are the decision log (`decisions`, read and written by `history.DecisionLog`) and the
rebuild ledger (`base_rebuilds`, by `baseimages.rebuild.Ledger`). Only this module imports sqlite3.

The file is a record, never a precondition: losing it loses no deploy history (that is in git). So a read
that fails, or finds no file yet, gives nothing; a write that fails writes nothing and says so to its caller;
either is one warning naming the file and what the failure means there. sqlite3's errors stay here.

Versions before the schema was numbered created what they used on first use (`PRAGMA user_version` 0): either
table may be missing, and a decision log from before the `automatic` column lacks it. The first migration
brings any of them to the schema of version 1; each later change is one more migration (version 2: the
`environment` of each decision).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("tagtrail.store")
T = TypeVar("T")
Row = tuple[Any, ...]  # in the order the query names its columns (plain tuples: 20,000 rows per first read)


_TABLES = (
    """CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    app TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    sentence TEXT NOT NULL,
    running TEXT,
    target TEXT,
    actor TEXT NOT NULL,
    candidates INTEGER NOT NULL,
    ignored TEXT NOT NULL,
    requests INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    "commit" TEXT,
    outcome TEXT,
    automatic INTEGER NOT NULL DEFAULT 0
)""",
    "CREATE INDEX IF NOT EXISTS decisions_by_app ON decisions (app, id)",
    """CREATE TABLE IF NOT EXISTS base_rebuilds (
    app TEXT NOT NULL,
    base_digest TEXT NOT NULL,
    started TEXT NOT NULL,
    via TEXT NOT NULL,
    PRIMARY KEY (app, base_digest)
)""",
)


def _unnumbered(db: sqlite3.Connection) -> None:
    """Version 1, from whatever an earlier tagtrail left: both tables, the `automatic` column."""
    for statement in _TABLES:
        db.execute(statement)
    if "automatic" not in {row[1] for row in db.execute("PRAGMA table_info(decisions)")}:
        db.execute("ALTER TABLE decisions ADD COLUMN automatic INTEGER NOT NULL DEFAULT 0")
        # the controller's actor name said it then
        db.execute("UPDATE decisions SET automatic = 1 WHERE actor = 'tagtrail serve'")


def _environments(db: sqlite3.Connection) -> None:
    """Version 2: each decision names its environment (issue 27); what was there before was the one lane
    of a single deploy:, 'default'."""
    db.execute("ALTER TABLE decisions ADD COLUMN environment TEXT NOT NULL DEFAULT 'default'")
    db.execute("CREATE INDEX IF NOT EXISTS decisions_by_environment ON decisions (environment, app, id)")


_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_unnumbered, _environments)


class Transaction:
    """The statements of one write, committed together or not at all."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def run(self, statement: str, args: Sequence[object] | dict[str, object] = ()) -> int:
        """Run one statement; the rows it changed."""
        return self._db.execute(statement, args).rowcount


class Store:
    """The SQLite file at `path`, opened for one read or one write at a time (several processes share it:
    the CLI, `tagtrail serve`, its prune and base-image tasks)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, query: str, args: Sequence[object] = (), *, what: str) -> list[Row]:
        """The rows of `query`; empty when there is no file yet or it cannot be read."""
        if not self.path.exists():
            return []
        try:
            with self._open() as db:
                rows: list[Row] = db.execute(query, args).fetchall()
                return rows
        except (sqlite3.Error, OSError) as exc:
            log.warning("%s %s cannot be read (%s)", what, self.path, exc)
            return []

    def write(self, work: Callable[[Transaction], T], *, what: str, failing: str = "") -> T | None:
        """`work` in one transaction, and what it returned; None when the file cannot be written (nothing
        is, and the warning says `what` could not be written and, after it, `failing`)."""
        try:
            with self._open() as db:
                return work(Transaction(db))
        except (sqlite3.Error, OSError) as exc:
            log.warning("%s %s cannot be written (%s)%s", what, self.path, exc, failing)
            return None

    @contextmanager
    def _open(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=10)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # readers (the dashboard) never wait for a writer
            _migrate(db)
            with db:
                yield db


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the file to the current schema, once however many processes open it at the same moment."""
    if _version(db) >= len(_MIGRATIONS):
        return
    db.execute("BEGIN IMMEDIATE")  # the first to get here migrates; the others wait, then find it done
    try:
        for migration in _MIGRATIONS[_version(db) :]:
            migration(db)
        db.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])
