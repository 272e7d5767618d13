"""The dashboard's pages: the table of apps, one app's history and decisions, the live-update stream, and
signing in and out. Reading needs a session unless `serve.public`; acting is `web.actions`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.templating import Jinja2Templates

from tagtrail import __version__
from tagtrail.domain.humanize import age, share, span
from tagtrail.domain.policy import eligible_build
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Planned
from tagtrail.serve.controller import Controller
from tagtrail.serve.controller.snapshot import Snapshot
from tagtrail.serve.web.auth import (
    COOKIE,
    SESSION_SECONDS,
    Flashes,
    Login,
    Sessions,
    SignInGuard,
    same_origin,
)
from tagtrail.serve.web.insights import InsightsPages
from tagtrail.serve.web.views import Row, commit_link, row

log = logging.getLogger("tagtrail.web")
TEMPLATES = Path(__file__).parent / "templates"
KEEPALIVE_SECONDS = 15.0


class Dashboard:
    """The pages, bound to one controller and the sessions signed in to it."""

    def __init__(
        self, controller: Controller, sessions: Sessions, *, secure_cookies: bool | None = None
    ) -> None:
        self.controller = controller
        self.sessions = sessions
        self.secure_cookies = secure_cookies  # `serve --secure-cookies`; None: serve.secure_cookies decides
        self.guard = SignInGuard()
        self.flashes = Flashes()
        self.templates = Jinja2Templates(directory=TEMPLATES)
        self.templates.env.filters["age"] = age
        self.templates.env.filters["span"] = span
        self.templates.env.filters["share"] = share
        self.templates.env.globals["version"] = __version__
        self.insights = InsightsPages(self, controller)

    def signed_in(self, request: Request) -> Login | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        controller = self.controller
        context.update(
            login=self.signed_in(request),
            actions=self.sessions.enabled,
            token_env=controller.config.serve.token_env,
            status=controller.status,
            now=datetime.now(UTC),
            flash=self.flashes.take(request.query_params.get("flash")),
            flash_error=self.flashes.take(request.query_params.get("error")),
        )
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def may_read(self, request: Request) -> bool:
        return self.controller.config.serve.public or self.signed_in(request) is not None

    def _rows(self) -> list[Row]:
        snapshot = self.controller.snapshot
        scheme = self.controller.config.tag_scheme
        rows = [
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
        return [_with_cluster(r, snapshot) for r in rows]

    async def index(self, request: Request) -> Response:
        if not self.may_read(request):
            return RedirectResponse("/login?next=/", status_code=303)
        rows = self._rows()
        counts = {state: sum(1 for r in rows if r.state == state) for state in ("behind", "pinned", "error")}
        bases = {app: base for app, base in self.controller.bases.rows.items() if base.moved}
        counts["base_moved"] = len(bases)
        lanes = {r.app: self._environments(r.app) for r in rows} if self.controller.lanes.after else {}
        return self.page(
            request,
            "index.html",
            rows=rows,
            counts=counts,
            bases=bases,
            snapshot=self.controller.snapshot,
            lanes=lanes,
        )

    async def app_page(self, request: Request) -> Response:
        app = request.path_params["app"]
        if not self.may_read(request):
            return RedirectResponse(f"/login?next=/apps/{app}", status_code=303)
        found = next((r for r in self._rows() if r.app == app), None)
        if found is None:
            return self.page(request, "missing.html", status=404, app=app)
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

        return self.page(
            request,
            "app.html",
            insights=await self.insights.app_charts(app),
            row=found,
            entries=entries,
            decisions=decisions,
            link=lambda sha: commit_link(commit_url, sha),
            can_roll_back_to=can_roll_back_to,
            base=self.controller.bases.rows.get(app),
            environments=self._environments(app),
            promote_to=self.controller.lanes.gated(),
            histories=await self.controller.lanes.histories(app, self.controller.lock),
        )

    def _environments(self, app: str) -> list[tuple[str, Planned | None]]:
        """The app in each environment, in order (empty for a single deploy:): the first's decision is the
        controller's own, the others' from their last reconcile."""
        later = self.controller.lanes.row(app)
        if not later:
            return []
        first = self.controller.reconciler.project.environment
        return [(first, self.controller.status.planned.get(app)), *later]

    async def events(self, request: Request) -> Response:
        """Server-sent events: one line whenever the table changed, so open pages refresh themselves."""
        if not self.may_read(request):
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
        return self.page(request, "login.html", next=safe_next(request.query_params.get("next")), error=None)

    async def login(self, request: Request) -> Response:
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return PlainTextResponse("cross-site sign-in refused\n", status_code=403)
        form = await request.form()
        target = safe_next(form_field(form, "next"))
        if not self.sessions.enabled:
            return self.page(
                request,
                "login.html",
                status=403,
                next=target,
                error=f"Sign-in is off: set {self.controller.config.serve.token_env} for tagtrail serve.",
            )
        client = request.client.host if request.client else "?"
        wait = self.guard.before(client)  # per client first, whatever the token says
        login = None
        if not wait:
            login = self.sessions.sign_in(form_field(form, "token") or "", form_field(form, "name") or "")
            if login is None:
                log.warning("a dashboard sign-in with a wrong token from %s", client)
                wait = self.guard.refused(client)
                if not wait:
                    return self.page(
                        request, "login.html", status=401, next=target, error="That token is not right."
                    )
        if login is None:
            log.warning("dashboard sign-in from %s refused: too many failed attempts", client)
            response = self.page(
                request,
                "login.html",
                status=429,
                next=target,
                error=f"Too many failed sign-ins; try again in {wait} s.",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        log.info("%s signed in to the dashboard", login.actor)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            login.id,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self.controller.config.serve.secure_cookies
            if self.secure_cookies is None
            else self.secure_cookies,
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return PlainTextResponse("cross-site sign-out refused\n", status_code=403)
        if self.sessions.sign_out(request.cookies.get(COOKIE)):
            await self.sessions.publish()
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response


def form_field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def safe_next(target: str | None) -> str:
    """Only a path on this site (never //other.host or a URL) is a place to go after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _with_cluster(found: Row, snapshot: Snapshot) -> Row:
    """The row with what the cluster runs (where kubernetes: is set)."""
    view = snapshot.cluster.get(found.app)
    if view is None:
        return found
    text = f"{view.ready}/{view.total} ready" if view.workloads else "no workload"
    if view.workloads and view.rollout != "complete":
        text += f", {view.rollout}"
    lead = snapshot.lead_time.get(found.app)
    if lead is not None and found.app not in snapshot.drift:
        text += f", running {span(lead)} after its commit"
    return dataclasses.replace(found, cluster=text, drift=snapshot.drift.get(found.app))
