"""The dashboard's actions: POST /apps/{app}/deploy|rollback|pin|unpin|promote.

An action needs a session, a same-origin request and the session's CSRF token; it is recorded with the
signed-in actor, and its outcome comes back to the app's page as a flash message or an error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from tagtrail import reconcile
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Reconciler, Report
from tagtrail.serve.web.auth import csrf_ok, same_origin
from tagtrail.serve.web.dashboard import Dashboard, form_field

log = logging.getLogger("tagtrail.web")


class Actions:
    """The action routes, acting through the dashboard's controller as its signed-in users."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.controller = dashboard.controller

    async def action(self, request: Request) -> Response:
        """deploy / rollback / pin / unpin one app: signed in, same origin, the session's CSRF token."""
        app, verb = request.path_params["app"], request.path_params["verb"]
        login = self.dashboard.signed_in(request)
        if login is None:
            return PlainTextResponse("sign in to act on apps\n", status_code=401)
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return PlainTextResponse("cross-site request refused\n", status_code=403)
        form = await request.form()
        if not csrf_ok(login, form_field(form, "csrf")):
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
            key = self.dashboard.flashes.keep(str(exc).splitlines()[0])
            return RedirectResponse(f"{back}?{urlencode({'error': key})}", status_code=303)
        key = self.dashboard.flashes.keep(message)
        return RedirectResponse(f"{back}?{urlencode({'flash': key})}", status_code=303)

    async def _act(self, verb: str, app: str, actor: str, form: FormData) -> str:
        controller = self.controller
        if verb == "deploy":
            report = await controller.deploy_now(app, actor)
            return _said(report, f"{app} is already running its newest eligible build")
        action: Callable[[Reconciler], Awaitable[Report]]
        if verb == "rollback":
            to = form_field(form, "to")
            action = partial(reconcile.rollback, app=app, to=to or None, actor=actor)
        elif verb == "pin":
            tag = (form_field(form, "tag") or "").strip()
            if not tag:
                raise TagtrailError("give the tag to pin")
            action = partial(reconcile.pin, app=app, tag=tag, actor=actor)
        elif verb == "unpin":
            action = partial(reconcile.unpin, app=app, actor=actor)
        elif verb == "promote":  # through the gate of the environment named, as `tagtrail promote` does
            to = form_field(form, "to") or ""
            lane = controller.lanes.of(to)
            if lane is None or to not in controller.lanes.gated():
                raise TagtrailError(f"no environment '{to[:40]}' takes builds from another")
            action = lambda _first: reconcile.promote(lane, app, None, actor=actor)  # noqa: E731
        else:
            raise TagtrailError(f"no action '{verb}'")
        report = await controller.act(action, actor)
        return _said(report, f"nothing to change for {app}")


def _said(report: Report | None, nothing: str) -> str:
    if report is None or not report.applied.commit:
        return nothing
    what = ", ".join(report.changed) or "pins"
    return f"{what}: commit {report.applied.commit[:12]}" + (" pushed" if report.applied.pushed else "")
