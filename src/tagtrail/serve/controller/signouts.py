"""Dashboard sign-outs that hold on every replica and across restarts.

A session is a signed token that nothing on the server lists, so signing out records, per signed-in name,
the moment it signed out: every session of that name issued before it is refused, on every replica that
reads the record. With leader election the record is an annotation of the Lease every replica reads each
`retry` anyway (no more API calls, no more RBAC); with one replica it is a file beside the decision log.

Bounded without forgetting: a record older than a session's lifetime is dropped (every session it refused
has expired), and past KEPT names the oldest is folded into `before`, a moment before which every session
is refused: more people are signed out, nobody signed out is let back in.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tagtrail.errors import TagtrailError

if TYPE_CHECKING:
    from tagtrail.adapters.kube.lease import Elector
    from tagtrail.serve.controller.controller import Controller

log = logging.getLogger("tagtrail.web")
KEPT = 256
ANNOTATION = "tagtrail.dev/signed-out"
SKEW = 5 * 60 * 1000  # milliseconds a replica's clock may be ahead of another's


class SignOuts:
    """Per name, when it signed out (Unix milliseconds); `before`: every session issued earlier is refused."""

    def __init__(self, names: dict[str, int] | None = None, before: int = 0) -> None:
        self.names = dict(names or {})
        self.before = before

    def refuses(self, name: str, issued: int) -> bool:
        """Whether a session of `name` issued at `issued` was signed out (a sign-in after it is not)."""
        return issued <= self.before or issued <= self.names.get(name, -1)

    def add(self, name: str, at: int) -> None:
        self.names[name] = max(at, self.names.get(name, at))

    def merge(self, other: SignOuts) -> None:
        for name, at in other.names.items():
            self.add(name, at)
        self.before = max(self.before, other.before)

    def bound(self, now: int, lifetime: int) -> None:
        """Drop what no live session can need; past KEPT names, fold the oldest into `before`. A moment later
        than now (plus SKEW between replicas' clocks) is read as now + SKEW: the record is written by
        whoever may update the Lease, and a moment far ahead would refuse every later sign-in for ever."""
        horizon, latest = now - lifetime, now + SKEW
        self.names = {name: min(at, latest) for name, at in self.names.items() if at > horizon}
        self.before = min(self.before, latest)
        for name, at in sorted(self.names.items(), key=lambda item: item[1])[
            : max(0, len(self.names) - KEPT)
        ]:
            self.before = max(self.before, at)
            del self.names[name]
        if self.before <= horizon:
            self.before = 0

    def dumps(self) -> str:
        return json.dumps({"before": self.before, "names": self.names}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | None) -> SignOuts:
        """The record as dumps wrote it; anything else is read as no sign-outs (and said)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            names = {str(k): int(v) for k, v in data["names"].items()}
            return cls(names, int(data["before"]))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            log.warning("the record of dashboard sign-outs is not one tagtrail wrote; it is read as empty")
            return cls()


class SignedOut:
    """The sign-outs this replica honours: its own, merged with the record in `store` whenever that text
    changes, and merged into it by `publish`; bounded by `lifetime` (a session's, in milliseconds) at each
    change. Times are Unix milliseconds."""

    def __init__(self, store: Store | None, lifetime: int) -> None:
        self.store = store
        self.lifetime = lifetime
        self.record = SignOuts()
        self._merged: str | None = None  # the store's text last merged into record

    def refuses(self, name: str, issued: int, now: int) -> bool:
        text = self.store.text() if self.store is not None else None
        if text != self._merged:  # another replica signed someone out (or a record expired)
            self._merged = text
            self._fold(self.record, SignOuts.loads(text), now)
        return self.record.refuses(name, issued)

    def add(self, name: str, now: int) -> None:
        """Signs `name` out on this replica at once; `publish` tells the others."""
        self._fold(self.record, SignOuts({name: now}), now)

    async def publish(self, now: int) -> None:
        """This replica's sign-outs merged into the record every replica reads."""
        if self.store is None:
            return

        def update(text: str | None) -> str:
            return self._fold(SignOuts.loads(text), self.record, now).dumps()

        try:
            await self.store.save(update)
        except TagtrailError as error:
            log.warning("a sign-out holds on this replica only until it is told again: %s", error)

    def _fold(self, into: SignOuts, other: SignOuts, now: int) -> SignOuts:
        into.merge(other)
        into.bound(now, self.lifetime)
        return into


class Store(Protocol):
    """Where the record lives: its text as last read, and a read-modify-write of it."""

    def text(self) -> str | None: ...

    async def save(self, update: Callable[[str | None], str]) -> None: ...


class FileStore:
    """One replica: a file beside the decision log, read once at start and written whole (rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._text = self._read()

    def _read(self) -> str | None:
        try:
            return self.path.read_text()
        except OSError:
            return None

    def text(self) -> str | None:
        return self._text

    async def save(self, update: Callable[[str | None], str]) -> None:
        text = update(self._read())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            partial.write_text(text)
            partial.replace(self.path)
        except OSError as error:
            raise TagtrailError(f"cannot write {self.path}: {error.strerror or error}") from None
        self._text = text


class LeaseStore:
    """Leader election: an annotation of the Lease, read by every replica at each try or renewal."""

    def __init__(self, elector: Elector) -> None:
        self.elector = elector

    def text(self) -> str | None:
        return self.elector.notes.get(ANNOTATION)

    async def save(self, update: Callable[[str | None], str]) -> None:
        await self.elector.annotate(ANNOTATION, update)


def store_for(controller: Controller) -> Store:
    if controller.elector is not None:
        return LeaseStore(controller.elector)
    return FileStore(controller.reconciler.project.log.path.with_name("signed-out.json"))
