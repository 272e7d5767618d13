"""A third target, as a contributor adds one: this module and a `deploy.file:` section, nothing else.

Deploys land in one JSON file, `{"version": N, "apps": {app: "repository:tag@digest"}}`. A write is guarded
by the version it read: a file written meanwhile (another tagtrail, a hand edit) is a conflict, and the
reconciler reads and decides again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tagtrail.adapters.history import HistoryEntry
from tagtrail.domain.policy import Running
from tagtrail.errors import TagtrailError
from tagtrail.targets.base import Applied, AppState, C, Capability, Change, Conflict, Declared
from tagtrail.targets.factory import TargetKind, register
from tagtrail.targets.project import Project


@dataclass(frozen=True)
class Written:
    """This target's own detail of a write, beside Applied's common fields: the version it wrote."""

    version: int


class FileSettings(BaseModel):
    """deploy.file: where the file is, relative to tagtrail.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(description="The JSON file deploys are written to.")


class FileTarget:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"the file {path.name}"

    def load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {"version": 0, "apps": {}}

    async def declared(self) -> Declared:
        return _declared(self.load())

    @asynccontextmanager
    async def writing(self, *, dry_run: bool = False) -> AsyncIterator[FileWriting]:
        yield FileWriting(self, dry_run)

    def offers(self, capability: Capability[C]) -> C | None:
        return None  # no checkout, not the cluster

    async def history(self, app: str | None = None, *, until: list[str] | None = None) -> list[HistoryEntry]:
        return []

    async def sync(self) -> bool:
        return False

    async def aclose(self) -> None:
        return None


class FileWriting:
    retries = 3

    def __init__(self, target: FileTarget, dry_run: bool) -> None:
        self.target, self.dry_run = target, dry_run
        self.version = 0

    async def read(self) -> Declared:
        data = self.target.load()
        self.version = data["version"]
        return _declared(data)

    async def write(self, declared: Declared, change: Change) -> Applied | Conflict:
        data = self.target.load()
        apps = dict(data["apps"])
        changed = sorted(c.app for c in change.images if apps.get(c.app) != c.image.reference)
        previous = {app: apps.get(app) for app in changed}
        applied = Applied(change, changed=changed, previous=previous)
        if not changed or self.dry_run:
            return applied
        if data["version"] != self.version:
            return Conflict("the file changed since it was read", lambda n: TagtrailError(f"lost {n} times"))
        apps.update({c.app: c.image.reference for c in change.images})
        self.target.path.write_text(json.dumps({"version": self.version + 1, "apps": apps}))
        applied.commit, applied.pushed, applied.kind = f"version {self.version + 1}", True, "file"
        applied.details.add(Written(self.version + 1))
        return applied

    async def refresh(self) -> None:
        return None  # every read is of the file as it is now


def _declared(data: dict[str, Any]) -> Declared:
    states = {}
    for app, written in data["apps"].items():
        name, _, digest = written.partition("@")
        tag = name.rpartition(":")[2]
        states[app] = AppState(app, (), Running(tag, digest or None), written)
    return Declared(states)


def _build(project: Project[Any], settings: BaseModel, keep: bool) -> FileTarget:
    assert isinstance(settings, FileSettings)
    return FileTarget(project.config_path.parent / settings.path)


register(TargetKind("file", _build), FileSettings)
