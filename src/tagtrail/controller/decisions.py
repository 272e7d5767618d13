"""Where the dashboard reads the decision log. One replica: its own. With leader election, only the leader
decides and writes, so a follower asks the leader (GET /internal/decisions, with the webhook token the
replicas share) and falls back to its own log when the leader cannot be asked; every replica then shows the
same decisions whichever one the Service sent the page to."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from tagtrail.history import DecisionRecord

if TYPE_CHECKING:
    from tagtrail.controller.controller import Controller

log = logging.getLogger("tagtrail.controller")


def to_json(record: DecisionRecord) -> dict[str, Any]:
    return {**dataclasses.asdict(record), "time": record.time.isoformat()}


def from_json(data: dict[str, Any]) -> DecisionRecord:
    return DecisionRecord(**{**data, "time": datetime.fromisoformat(data["time"])})


class Decisions:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def recent(self, app: str, limit: int) -> list[DecisionRecord]:
        asked = await self._ask({"app": app, "limit": str(limit)})
        if asked is not None:
            return [from_json(d) for d in asked]
        return await asyncio.to_thread(self.controller.reconciler.log.recent, app, limit)

    async def last_each(self, *, acted: bool = False) -> dict[str, DecisionRecord]:
        asked = await self._ask({"last": "acted" if acted else "any"})
        if asked is not None:
            return {r.app: r for r in map(from_json, asked)}
        return await asyncio.to_thread(self.controller.reconciler.log.last_each, acted=acted)

    async def _ask(self, params: dict[str, str]) -> list[dict[str, Any]] | None:
        """The leader's answer, on a follower that knows where the leader is; None: read this replica's."""
        elector = self.controller.elector
        token = os.environ.get(self.controller.config.serve.webhooks.generic.token_env)
        if elector is None or elector.leading or not elector.leader_address or not token:
            return None
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                answer = await client.get(
                    f"{elector.leader_address}/internal/decisions",
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            answer.raise_for_status()
            found = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            log.warning(
                "the leader's decisions could not be read (%s); showing this replica's", type(error).__name__
            )
            return None
        return found if isinstance(found, list) else None
