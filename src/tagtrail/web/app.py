"""The HTTP side of `tagtrail serve`: probes, metrics, webhook receivers, and the dashboard.

Routes
  GET  /healthz, /readyz, /metrics
  POST /hooks/registry   the distribution registry's notifications (shared secret in a header)
  POST /hooks/github     GitHub package / registry_package events (X-Hub-Signature-256)
  POST /hooks/generic    {"image": …, "tag": …} with a bearer token
  GET  /, /apps/{app}    the dashboard; GET /events streams "something changed" to open pages
  GET|POST /login, POST /logout
  POST /apps/{app}/deploy|rollback|pin|unpin   actions: signed in, CSRF token, recorded with the actor
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tagtrail.controller import Controller
from tagtrail.web.actions import Actions
from tagtrail.web.auth import Sessions
from tagtrail.web.dashboard import Dashboard
from tagtrail.web.dashboard import safe_next as _safe_next
from tagtrail.web.probes import Probes
from tagtrail.web.receivers import Receivers

__all__ = ["_safe_next", "create_app"]  # _safe_next stays importable here, where its tests take it from

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Web:
    """The routes' handlers, bound to one controller (kept on `app.state.web`)."""

    probes: Probes
    receivers: Receivers
    dashboard: Dashboard
    actions: Actions

    @classmethod
    def bind(cls, controller: Controller, env: Mapping[str, str] | None = None) -> Web:
        env = os.environ if env is None else env
        dashboard = Dashboard(controller, Sessions(env.get(controller.config.serve.token_env)))
        return cls(Probes(controller), Receivers(controller, env), dashboard, Actions(dashboard))


def create_app(
    controller: Controller, env: Mapping[str, str] | None = None, *, run: bool = True
) -> Starlette:
    """The ASGI app. With `run`, its lifespan starts the controller's loop and stops it (after the write in
    progress) on shutdown."""
    web = Web.bind(controller, env)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if run:
            await controller.start()
        try:
            yield
        finally:
            if run:
                await controller.stop()

    routes = [
        Route("/healthz", web.probes.healthz, methods=["GET"]),
        Route("/readyz", web.probes.readyz, methods=["GET"]),
        Route("/metrics", web.probes.metrics, methods=["GET"]),
        Route("/hooks/registry", web.receivers.registry_hook, methods=["POST"]),
        Route("/hooks/github", web.receivers.github_hook, methods=["POST"]),
        Route("/hooks/generic", web.receivers.generic_hook, methods=["POST"]),
        Route("/", web.dashboard.index, methods=["GET"]),
        Route("/events", web.dashboard.events, methods=["GET"]),
        Route("/login", web.dashboard.login_form, methods=["GET"]),
        Route("/login", web.dashboard.login, methods=["POST"]),
        Route("/logout", web.dashboard.logout, methods=["POST"]),
        Route("/apps/{app}", web.dashboard.app_page, methods=["GET"]),
        Route("/apps/{app}/{verb:str}", web.actions.action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web = web
    return app
