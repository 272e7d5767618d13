"""The dashboard's delivery insights: GET /insights (the measures per app and overall, with charts) and the
small charts of an app's page.

The deploy history is read (in a worker thread, under the controller's lock, so never during a write) only
when it may have changed: the cache is keyed by the controller's last deploy commit and each app's newest
change as the last reconcile saw it (a hand edit pulled from the remote changes that). Between deploys a
page view works out its window from the changes classified once, well under the 200 ms a page may take.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tagtrail.config import Config
from tagtrail.config.types import parse_duration
from tagtrail.errors import TagtrailError
from tagtrail.features.insights import DEFINITIONS, Insights, Measures
from tagtrail.features.insights.project import DeployFacts, read_facts
from tagtrail.serve.web.charts import Chart, deploys_over_time, lead_time_distribution
from tagtrail.targets.capabilities import CHECKOUT, Checkout
from tagtrail.targets.factory import decision_log

if TYPE_CHECKING:
    from tagtrail.serve.controller import Controller

log = logging.getLogger("tagtrail.web")
DEFAULT_WINDOW = "30d"
WINDOWS = ("7d", "30d", "90d", "365d")
APP_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class AppCharts:
    """What an app's page shows of its insights."""

    insights: Insights
    charts: tuple[Chart, ...]


class InsightsCache:
    """The deploy facts of one controller, read again only when the history may have changed."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self._key: tuple[object, ...] | None = None
        self._facts: DeployFacts | None = None
        self._reading = asyncio.Lock()

    def key(self) -> tuple[object, ...]:
        controller = self.controller
        newest = sorted((app, entry.commit) for app, entry in controller.snapshot.last_deploy.items())
        return (id(controller.config), controller.status.last_commit, tuple(newest))

    async def facts(self) -> DeployFacts | None:
        """The facts as of now; None when the target keeps no history in git."""
        async with self._reading:
            key = self.key()
            if self._facts is not None and key == self._key:
                return self._facts
            controller = self.controller
            checkout = controller.reconciler.project.target.offers(CHECKOUT)
            if checkout is None:
                return None
            async with controller.lock:  # the first environment's view (its deploy files, its log)
                facts = await asyncio.to_thread(_read, controller.reconciler.project.config, checkout)
            self._facts, self._key = facts, key
            return facts


def _read(config: Config, checkout: Checkout) -> DeployFacts:
    with checkout.checked_out() as repo:
        return read_facts(config, repo, checkout.source_checkout(), decision_log(config))


class Pages(Protocol):
    """What the insights pages use of the dashboard: who may read, and a page in the dashboard's frame."""

    def may_read(self, request: Request) -> bool: ...

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response: ...


class InsightsPages:
    """GET /insights and the charts of an app's page, shown by the dashboard (`pages`)."""

    def __init__(self, pages: Pages, controller: Controller) -> None:
        self.pages = pages
        self.controller = controller
        self.cache = InsightsCache(controller)

    def _behind(self) -> dict[str, int | None]:
        return {p.app: p.decision.behind for p in self.controller.snapshot.planned}

    async def page(self, request: Request) -> Response:
        pages = self.pages
        if not pages.may_read(request):
            return RedirectResponse("/login?next=/insights", status_code=303)
        since = request.query_params.get("since", DEFAULT_WINDOW)
        try:
            window = parse_duration(since)
        except ValueError:
            since, window = DEFAULT_WINDOW, parse_duration(DEFAULT_WINDOW)
        context: dict[str, Any] = {
            "since": since,
            "windows": WINDOWS,
            "definitions": DEFINITIONS,
            "insights": None,
            "charts": (),
            "error": None,
        }
        try:
            facts = await self.cache.facts()
        except TagtrailError as exc:
            log.warning("the deploy history could not be read for insights: %s", exc)
            context["error"] = str(exc).splitlines()[0]
            return pages.page(request, "insights.html", **context)
        if facts is None:
            context["error"] = "Insights read the deploy history in git; this target keeps none."
            return pages.page(request, "insights.html", **context)
        insights = facts.insights(window, datetime.now(UTC), behind=self._behind())
        context["insights"] = insights
        context["charts"] = (
            deploys_over_time("deploys", insights.events, insights.start, insights.end, "Deploys"),
            lead_time_distribution("lead", insights.events, "Lead time of the deploys"),
        )
        context["read"] = facts.reading
        context["environments"] = await self._environments(insights, window)
        return pages.page(request, "insights.html", **context)

    async def _environments(self, first: Insights, window: timedelta) -> list[tuple[str, Measures]]:
        """Each environment's overall measures (the lead time to it, its change failure rate), the first's
        from the page's own; empty for a single deploy:. The later ones are read when the page is."""
        controller = self.controller
        if not controller.lanes.after:
            return []
        found = [(controller.reconciler.project.environment, first.overall)]
        for lane in controller.lanes.after:
            checkout = lane.project.target.offers(CHECKOUT)
            if checkout is None:
                continue
            async with controller.lock:
                facts = await asyncio.to_thread(_read, lane.project.config, checkout)
            found.append((lane.project.environment, facts.insights(window, datetime.now(UTC)).overall))
        return found

    async def app_charts(self, app: str) -> AppCharts | None:
        """The app's deploys over the last 90 days (restores marked) and its lead times; None when the
        history cannot be read (the page shows the rest)."""
        try:
            facts = await self.cache.facts()
        except TagtrailError as exc:
            log.warning("the deploy history could not be read for insights: %s", exc)
            return None
        if facts is None:
            return None
        insights = facts.insights(APP_WINDOW, datetime.now(UTC), app=app, behind=self._behind())
        return AppCharts(
            insights,
            (
                deploys_over_time("app-deploys", insights.events, insights.start, insights.end, "Deploys"),
                lead_time_distribution("app-lead", insights.events, "Lead time"),
            ),
        )
