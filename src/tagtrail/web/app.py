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

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tagtrail import __version__, reconcile
from tagtrail.controller import Controller
from tagtrail.errors import TagtrailError
from tagtrail.humanize import age
from tagtrail.policy import eligible_build
from tagtrail.reconcile import Reconciler, Report
from tagtrail.web import hooks
from tagtrail.web.auth import COOKIE, SESSION_SECONDS, Login, Sessions, csrf_ok, same_origin
from tagtrail.web.views import Row, commit_link, row

log = logging.getLogger("tagtrail.web")
HERE = Path(__file__).parent
KEEPALIVE_SECONDS = 15.0


class TooLarge(TagtrailError):
    """A webhook body over the size cap."""


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refusing (before reading it all) one larger than `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Web:
    """The routes, bound to one controller."""

    def __init__(self, controller: Controller, env: Mapping[str, str] | None = None) -> None:
        self.controller = controller
        self.env = os.environ if env is None else env
        self.sessions = Sessions(self.env.get(controller.config.serve.token_env))
        self.replays = hooks.ReplayGuard()
        rate = controller.config.serve.webhooks.rate
        self.limiter = hooks.RateLimiter(rate, burst=10 * rate)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.filters["age"] = age
        self.templates.env.globals["version"] = __version__

    # Probes and metrics ---------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(self, request: Request) -> Response:
        ready, why = self.controller.ready
        return PlainTextResponse(f"{why}\n", status_code=200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(
            self.controller.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    # Webhooks -------------------------------------------------------------------------------------------

    async def _hook(
        self,
        request: Request,
        source: str,
        check: Callable[[bytes], None],
        parse: Callable[[bytes], list[hooks.Push]],
    ) -> Response:
        """Rate limit, read (size-capped), authenticate, parse, hint; every outcome counted, no payload logged."""
        client = request.client.host if request.client else "?"
        settings = self.controller.config.serve.webhooks
        outcome, status, detail = "accepted", 202, ""
        apps: list[str] = []
        ignored = 0
        try:
            self._limit(f"{source}:{client}")
            body = await _body(request, settings.max_body)
            check(body)
            for push in parse(body):
                app = await self.controller.hint(push.image, push.tag, source)
                if app is None:
                    ignored += 1
                elif app not in apps:
                    apps.append(app)
            if not apps:
                outcome = "ignored"
        except TooLarge:
            outcome, status, detail = "too_large", 413, f"the body is larger than {settings.max_body} bytes"
        except hooks.HookError as exc:
            status, detail = exc.status, str(exc)
            outcome = {401: "unauthorized", 409: "replayed", 429: "rate_limited", 503: "disabled"}.get(
                exc.status, "bad_request"
            )
        if status >= 400 and status != 429:
            self.limiter.charge(f"{source}:{client}")
        self.controller.metrics.webhooks.labels(source, outcome).inc()
        if status >= 400:
            log.warning("webhook %s from %s refused (%d): %s", source, client, status, detail)
            return JSONResponse({"error": detail}, status_code=status)
        return JSONResponse({"apps": apps, "ignored": ignored}, status_code=status)

    def _limit(self, key: str) -> None:
        rate = self.controller.config.serve.webhooks.rate
        if self.limiter.rate != rate:  # the config was reloaded with another rate
            self.limiter = hooks.RateLimiter(rate, burst=10 * rate)
        if self.limiter.blocked(key):
            raise hooks.HookError(
                429, "too many refused webhook requests from this client; wait and fix them"
            )

    def _secret(self, name: str, what: str) -> str:
        secret = self.env.get(name)
        if not secret:
            raise hooks.HookError(503, f"the {what} webhook is off: set {name} in tagtrail's environment")
        return secret

    async def registry_hook(self, request: Request) -> Response:
        settings = self.controller.config.serve.webhooks.registry

        def check(body: bytes) -> None:
            secret = self._secret(settings.secret_env, "registry")
            given = request.headers.get(settings.header)
            if not (hooks.secret_ok(secret, given) or hooks.secret_ok(secret, hooks.bearer(given))):
                raise hooks.HookError(401, f"missing or wrong secret in the {settings.header} header")

        return await self._hook(request, "registry", check, hooks.distribution_pushes)

    async def github_hook(self, request: Request) -> Response:
        settings = self.controller.config.serve.webhooks.github
        event = request.headers.get("x-github-event", "")

        def check(body: bytes) -> None:
            secret = self._secret(settings.secret_env, "GitHub")
            if not hooks.github_signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
                raise hooks.HookError(401, "missing or wrong X-Hub-Signature-256")
            delivery = request.headers.get("x-github-delivery")
            if not delivery:
                raise hooks.HookError(400, "no X-GitHub-Delivery header")
            if not self.replays.first_time(delivery):
                raise hooks.HookError(409, f"delivery {delivery[:64]} was already received")

        return await self._hook(request, "github", check, partial(hooks.github_pushes, event))

    async def generic_hook(self, request: Request) -> Response:
        settings = self.controller.config.serve.webhooks.generic

        def check(body: bytes) -> None:
            token = self._secret(settings.token_env, "generic")
            if not hooks.secret_ok(token, hooks.bearer(request.headers.get("authorization"))):
                raise hooks.HookError(401, "missing or wrong bearer token")

        return await self._hook(request, "generic", check, lambda body: [hooks.generic_push(body)])

    # Dashboard ------------------------------------------------------------------------------------------

    def _login(self, request: Request) -> Login | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def _page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        controller = self.controller
        context.update(
            login=self._login(request),
            actions=self.sessions.enabled,
            token_env=controller.config.serve.token_env,
            status=controller.status,
            now=datetime.now(UTC),
            flash=request.query_params.get("flash"),
            flash_error=request.query_params.get("error"),
        )
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def _may_read(self, request: Request) -> bool:
        return self.controller.config.serve.public or self._login(request) is not None

    def _rows(self) -> list[Row]:
        snapshot = self.controller.snapshot
        scheme = self.controller.config.tag_scheme
        return [
            row(
                planned,
                scheme,
                snapshot.pins.get(planned.app),
                snapshot.last_deploy.get(planned.app),
                snapshot.last_result.get(planned.app),
                self.controller.commit_url,
                snapshot.last_decision.get(planned.app),
            )
            for planned in snapshot.planned
        ]

    async def index(self, request: Request) -> Response:
        if not self._may_read(request):
            return RedirectResponse("/login?next=/", status_code=303)
        rows = self._rows()
        counts = {state: sum(1 for r in rows if r.state == state) for state in ("behind", "pinned", "error")}
        return self._page(request, "index.html", rows=rows, counts=counts, snapshot=self.controller.snapshot)

    async def app_page(self, request: Request) -> Response:
        app = request.path_params["app"]
        if not self._may_read(request):
            return RedirectResponse(f"/login?next=/apps/{app}", status_code=303)
        found = next((r for r in self._rows() if r.app == app), None)
        if found is None:
            return self._page(request, "missing.html", status=404, app=app)
        try:
            entries, decisions = await self.controller.app_detail(app)
        except TagtrailError as exc:
            entries, decisions = [], []
            log.warning("history of %s could not be read: %s", app, exc)
        commit_url = self.controller.commit_url
        config = self.controller.config
        branches = config.deploy.branches_of(app)

        def can_roll_back_to(tag: str | None) -> bool:
            """Only builds of a deploy branch are ever deployed (not `bootstrap`, not a feature branch)."""
            return eligible_build(config.tag_scheme, branches, tag) is not None and tag != found.running

        return self._page(
            request,
            "app.html",
            row=found,
            entries=entries,
            decisions=decisions,
            link=lambda sha: commit_link(commit_url, sha),
            can_roll_back_to=can_roll_back_to,
        )

    async def events(self, request: Request) -> Response:
        """Server-sent events: one line whenever the table changed, so open pages refresh themselves."""
        if not self._may_read(request):
            return PlainTextResponse("sign in first\n", status_code=401)
        controller = self.controller
        queue = controller.live.subscribe()

        async def stream() -> AsyncIterator[str]:
            closing = asyncio.ensure_future(controller.closing.wait())
            try:
                yield "retry: 3000\n\n"
                while not controller.closing.is_set():
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {getter, closing}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        yield f"event: changed\ndata: {getter.result()}\n\n"
                    else:
                        getter.cancel()
                        if closing not in done:
                            yield ": keep-alive\n\n"
            finally:
                closing.cancel()
                controller.live.unsubscribe(queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def login_form(self, request: Request) -> Response:
        return self._page(
            request, "login.html", next=_safe_next(request.query_params.get("next")), error=None
        )

    async def login(self, request: Request) -> Response:
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return PlainTextResponse("cross-site sign-in refused\n", status_code=403)
        form = await request.form()
        target = _safe_next(_field(form, "next"))
        if not self.sessions.enabled:
            return self._page(
                request,
                "login.html",
                status=403,
                next=target,
                error=f"Sign-in is off: set {self.controller.config.serve.token_env} for tagtrail serve.",
            )
        login = self.sessions.sign_in(_field(form, "token") or "", _field(form, "name") or "")
        if login is None:
            log.warning(
                "a dashboard sign-in with a wrong token from %s",
                request.client.host if request.client else "?",
            )
            return self._page(
                request, "login.html", status=401, next=target, error="That token is not right."
            )
        log.info("%s signed in to the dashboard", login.actor)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            login.id,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self.controller.config.serve.secure_cookies,
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        self.sessions.sign_out(request.cookies.get(COOKIE))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def action(self, request: Request) -> Response:
        """deploy / rollback / pin / unpin one app: signed in, same origin, the session's CSRF token."""
        app, verb = request.path_params["app"], request.path_params["verb"]
        login = self._login(request)
        if login is None:
            return PlainTextResponse("sign in to act on apps\n", status_code=401)
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return PlainTextResponse("cross-site request refused\n", status_code=403)
        form = await request.form()
        if not csrf_ok(login, _field(form, "csrf")):
            return PlainTextResponse(
                "the form's CSRF token is missing or wrong; reload the page\n", status_code=403
            )
        if app not in self.controller.status.planned:
            return PlainTextResponse(f"{app} is not an app this controller deploys\n", status_code=404)
        actor = f"{login.actor} (dashboard)"
        log.info("%s asks to %s %s", actor, verb, app)
        back = f"/apps/{app}"
        try:
            message = await self._act(verb, app, actor, form)
        except TagtrailError as exc:
            return RedirectResponse(
                f"{back}?{urlencode({'error': str(exc).splitlines()[0]})}", status_code=303
            )
        return RedirectResponse(f"{back}?{urlencode({'flash': message})}", status_code=303)

    async def _act(self, verb: str, app: str, actor: str, form: FormData) -> str:
        controller = self.controller
        if verb == "deploy":
            report = await controller.deploy_now(app, actor)
            return _said(report, f"{app} is already running its newest eligible build")
        action: Callable[[Reconciler], Awaitable[Report]]
        if verb == "rollback":
            to = _field(form, "to")
            action = partial(reconcile.rollback, app=app, to=to or None, actor=actor)
        elif verb == "pin":
            tag = (_field(form, "tag") or "").strip()
            if not tag:
                raise TagtrailError("give the tag to pin")
            action = partial(reconcile.pin, app=app, tag=tag, actor=actor)
        elif verb == "unpin":
            action = partial(reconcile.unpin, app=app, actor=actor)
        else:
            raise TagtrailError(f"no action '{verb}'")
        report = await controller.act(action, actor)
        return _said(report, f"nothing to change for {app}")


def _said(report: Report | None, nothing: str) -> str:
    if report is None or not report.applied.commit:
        return nothing
    what = ", ".join(report.changed) or "pins"
    return f"{what}: commit {report.applied.commit[:12]}" + (" pushed" if report.applied.pushed else "")


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never //other.host or a URL) is a place to go after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def create_app(
    controller: Controller, env: Mapping[str, str] | None = None, *, run: bool = True
) -> Starlette:
    """The ASGI app. With `run`, its lifespan starts the controller's loop and stops it (after the write in
    progress) on shutdown."""
    web = Web(controller, env)

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
        Route("/healthz", web.healthz, methods=["GET"]),
        Route("/readyz", web.readyz, methods=["GET"]),
        Route("/metrics", web.metrics, methods=["GET"]),
        Route("/hooks/registry", web.registry_hook, methods=["POST"]),
        Route("/hooks/github", web.github_hook, methods=["POST"]),
        Route("/hooks/generic", web.generic_hook, methods=["POST"]),
        Route("/", web.index, methods=["GET"]),
        Route("/events", web.events, methods=["GET"]),
        Route("/login", web.login_form, methods=["GET"]),
        Route("/login", web.login, methods=["POST"]),
        Route("/logout", web.logout, methods=["POST"]),
        Route("/apps/{app}", web.app_page, methods=["GET"]),
        Route("/apps/{app}/{verb:str}", web.action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web = web
    return app
