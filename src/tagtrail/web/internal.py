"""What replicas ask each other: GET /internal/decisions, the decision log of the replica that leads,
for its followers' dashboards. Authenticated with the generic webhook token the replicas share."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tagtrail.controller import Controller
from tagtrail.controller.decisions import to_json
from tagtrail.web import hooks

MOST = 500


class Internal:
    def __init__(self, controller: Controller, env: Mapping[str, str]) -> None:
        self.controller = controller
        self.env = env

    async def decisions(self, request: Request) -> Response:
        token = self.env.get(self.controller.config.serve.webhooks.generic.token_env)
        if not token or not hooks.secret_ok(token, hooks.bearer(request.headers.get("authorization"))):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        log = self.controller.reconciler.log
        last = request.query_params.get("last")
        if last in ("any", "acted"):
            found = await asyncio.to_thread(log.last_each, acted=last == "acted")
            return JSONResponse([to_json(r) for r in found.values()])
        try:
            limit = max(1, min(MOST, int(request.query_params.get("limit", "50"))))
        except ValueError:
            return JSONResponse({"error": "limit is a number"}, status_code=400)
        records = await asyncio.to_thread(log.recent, request.query_params.get("app") or None, limit)
        return JSONResponse([to_json(r) for r in records])
