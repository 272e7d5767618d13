"""What replicas ask each other, authenticated with the replicas' own secret (TAGTRAIL_REPLICA_SECRET, never
a webhook token): GET /internal/decisions, the decision log of the replica that leads, for its followers'
dashboards; POST /internal/hint, a webhook a follower received, for the leader to act on (a hint, as every
webhook: the leader reads the registry again and the policy decides). A client that keeps failing
authentication gets 429, as the webhooks' senders do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tagtrail.serve.controller import Controller
from tagtrail.serve.controller.decisions import to_json
from tagtrail.serve.controller.leadership import SECRET_ENV
from tagtrail.serve.web import hooks
from tagtrail.serve.web.receivers import TooLarge, read_body

MOST = 500
SOURCES = ("registry", "github", "generic")
HINT_BODY = 16 * 1024


class Internal:
    def __init__(self, controller: Controller, env: Mapping[str, str]) -> None:
        self.controller = controller
        self.env = env
        self.limiter = hooks.RateLimiter(1.0, burst=10.0)

    def _refused(self, request: Request) -> Response | None:
        client = request.client.host if request.client else "?"
        if self.limiter.blocked(client):
            return JSONResponse({"error": "too many refused requests from this client"}, status_code=429)
        secret = self.env.get(SECRET_ENV)
        if not secret:
            return JSONResponse({"error": f"replica calls are off: set {SECRET_ENV}"}, status_code=503)
        if not hooks.secret_ok(secret, hooks.bearer(request.headers.get("authorization"))):
            self.limiter.charge(client)
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        return None

    async def decisions(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        log = self.controller.reconciler.project.log
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

    async def hint(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        elector = self.controller.elector
        if elector is not None and not elector.leading:  # never passed on again: no loop between replicas
            return JSONResponse({"error": "this replica does not lead"}, status_code=409)
        try:
            body = await read_body(request, HINT_BODY)
            push = hooks.generic_push(body)
        except TooLarge:
            return JSONResponse({"error": f"the body is larger than {HINT_BODY} bytes"}, status_code=413)
        except hooks.HookError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        named = json.loads(body).get("source")  # generic_push has read it as a JSON object
        source = named if named in SOURCES else "generic"
        app = self.controller.hints.hint(push.image, push.tag, source)
        return JSONResponse({"app": app}, status_code=202)
