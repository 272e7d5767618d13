"""Where the dashboard reads the decision log. One replica: its own. With leader election, only the leader
decides and writes, so a follower asks the leader (GET /internal/decisions at the address the Kubernetes API
proves, with the replicas' secret) and falls back to its own log when there is no proven leader, the leader
cannot be asked, or it answers in a shape this version does not read (a rolling upgrade); every replica then
shows the same decisions whichever one the Service sent the page to, and never another's as the leader's."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from tagtrail.adapters.history import DecisionLog, DecisionRecord
from tagtrail.adapters.kube.lease import Elector
from tagtrail.serve.controller import leadership

log = logging.getLogger("tagtrail.controller")
# The kinds DecisionRecord's fields are declared with: a field of a new kind fails the round trip in
# tests/unit/test_leader_parts.py until it is named here.
_KINDS = {
    "str": str,
    "int": int,
    "bool": bool,
    "None": type(None),
    "datetime": datetime,
    "dict[str, int]": dict,
}


def to_json(record: DecisionRecord) -> dict[str, Any]:
    return {**dataclasses.asdict(record), "time": record.time.isoformat()}


def from_json(data: dict[str, Any]) -> DecisionRecord:
    """A record as to_json wrote it; another shape raises TypeError, KeyError or ValueError."""
    record = DecisionRecord(**{**data, "time": datetime.fromisoformat(data["time"])})
    for field in dataclasses.fields(record):
        kinds = tuple(_KINDS[kind.strip()] for kind in str(field.type).split("|"))
        if not isinstance(getattr(record, field.name), kinds):
            raise TypeError(f"a decision record's {field.name} is not {field.type}")
    return record


class Decisions:
    """`own`: this replica's decision log as it is now (a config reload may move it); `elector`: None with
    one replica."""

    def __init__(self, own: Callable[[], DecisionLog], elector: Elector | None) -> None:
        self.own = own
        self.elector = elector

    async def recent(self, app: str, limit: int) -> list[DecisionRecord]:
        asked = await self._ask({"app": app, "limit": str(limit)})
        if asked is not None:
            return asked
        return await asyncio.to_thread(self.own().recent, app, limit)

    async def last_each(self, *, acted: bool = False) -> dict[str, DecisionRecord]:
        asked = await self._ask({"last": "acted" if acted else "any"})
        if asked is not None:
            return {r.app: r for r in asked}
        return await asyncio.to_thread(self.own().last_each, acted=acted)

    async def _ask(self, params: dict[str, str]) -> list[DecisionRecord] | None:
        """The leader's records, on a follower that has proven where the leader is; None: read this replica's."""
        found = leadership.leader(self.elector)
        if found is None:
            return None
        url, secret = found
        try:
            async with leadership.client(secret) as http:
                answer = await http.get(f"{url}/internal/decisions", params=params)
            answer.raise_for_status()
            return [from_json(d) for d in answer.json()]
        except httpx.HTTPError as error:
            why = type(error).__name__
        except (ValueError, TypeError, KeyError, AttributeError):
            why = "an answer in another shape: another version of tagtrail?"
        log.warning("the leader's decisions could not be read (%s); showing this replica's", why)
        return None
