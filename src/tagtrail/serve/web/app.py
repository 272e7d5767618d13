"""The HTTP side of `tagtrail serve`: probes, metrics, webhook receivers, and the dashboard.

Routes
  GET  /healthz, /readyz, /metrics
  POST /hooks/registry   the distribution registry's notifications (shared secret in a header)
  POST /hooks/github     GitHub package / registry_package events (X-Hub-Signature-256)
  POST /hooks/generic    {"image": …, "tag": …} with a bearer token
  GET  /internal/decisions, POST /internal/hint   what replicas ask each other (TAGTRAIL_REPLICA_SECRET)
  GET  /, /apps/{app}, /insights   the dashboard (/insights: delivery measures and charts); GET /events streams "something changed" to open pages
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
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tagtrail.serve.controller import Controller
from tagtrail.serve.controller.signouts import store_for
from tagtrail.serve.web.actions import Actions
from tagtrail.serve.web.auth import Sessions
from tagtrail.serve.web.dashboard import Dashboard
from tagtrail.serve.web.dashboard import safe_next as _safe_next
from tagtrail.serve.web.internal import Internal
from tagtrail.serve.web.probes import Probes
from tagtrail.serve.web.receivers import Receivers

__all__ = ["_safe_next", "create_app"]  # _safe_next stays importable here, where its tests take it from

STATIC = Path(__file__).parent / "static"
# Pages load only this site's script and stylesheet (no inline code anywhere), may not be framed, and
# forms post only here: an injected tag can neither run nor exfiltrate, and clickjacking has no frame.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (pure ASGI, so the event stream stays a stream)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(frozen=True)
class Web:
    """The routes' handlers, bound to one controller (kept on `app.state.web`)."""

    probes: Probes
    receivers: Receivers
    dashboard: Dashboard
    actions: Actions
    internal: Internal

    @classmethod
    def bind(
        cls, controller: Controller, env: Mapping[str, str] | None = None, secure_cookies: bool | None = None
    ) -> Web:
        env = os.environ if env is None else env
        sessions = Sessions(env.get(controller.config.serve.token_env), store=store_for(controller))
        dashboard = Dashboard(controller, sessions, secure_cookies=secure_cookies)
        return cls(
            Probes(controller),
            Receivers(controller, env),
            dashboard,
            Actions(dashboard),
            Internal(controller, env),
        )


def create_app(
    controller: Controller,
    env: Mapping[str, str] | None = None,
    *,
    run: bool = True,
    secure_cookies: bool | None = None,
) -> Starlette:
    """The ASGI app. With `run`, its lifespan starts the controller's loop and stops it (after the write in
    progress) on shutdown."""
    web = Web.bind(controller, env, secure_cookies)

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
        Route("/internal/decisions", web.internal.decisions, methods=["GET"]),
        Route("/internal/hint", web.internal.hint, methods=["POST"]),
        Route("/", web.dashboard.index, methods=["GET"]),
        Route("/insights", web.dashboard.insights.page, methods=["GET"]),
        Route("/events", web.dashboard.events, methods=["GET"]),
        Route("/login", web.dashboard.login_form, methods=["GET"]),
        Route("/login", web.dashboard.login, methods=["POST"]),
        Route("/logout", web.dashboard.logout, methods=["POST"]),
        Route("/apps/{app}", web.dashboard.app_page, methods=["GET"]),
        Route("/apps/{app}/{verb:str}", web.actions.action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
    app.state.web = web
    return app
