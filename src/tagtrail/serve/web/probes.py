"""The probes and metrics of `tagtrail serve`: GET /healthz, /readyz and /metrics (no sign-in: they say
nothing about the apps beyond what a scraper needs)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tagtrail.serve.controller import Controller


class Probes:
    """Liveness, readiness (the controller's own verdict) and the Prometheus text format."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(self, request: Request) -> Response:
        ready, why = self.controller.ready
        return PlainTextResponse(f"{why}\n", status_code=200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(
            self.controller.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )
