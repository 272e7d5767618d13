"""The insights page and charts, in-process, over the hand-built history (bench.deployhistory): the figures
worked out by hand in test_insights appear on the page, every chart is an accessible SVG with its table,
nothing inline that the CSP would block, and the history is read again only when it changed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette

from bench.deployhistory import CONFIG_TEXT, T0, Monorepo, timeline
from tagtrail.features.insights import Event
from tagtrail.serve.controller import Controller
from tagtrail.serve.web.app import create_app
from tagtrail.serve.web.charts import deploys_over_time, lead_time_distribution

Served = tuple[Starlette, Controller, Monorepo]
Get = Callable[[str], Awaitable[httpx.Response]]


@pytest.fixture
def served(tmp_path: Path) -> Served:
    repo, _ = timeline(tmp_path / "mono")
    config = repo.root / "tagtrail.yaml"
    config.write_text(
        CONFIG_TEXT.replace("files: [deploy.yaml]", "files: [deploy.yaml]\n    push: false")
        + "serve:\n  public: true\n"
    )
    controller = Controller(config)
    return create_app(controller, {}, run=False), controller, repo


def run(app: Starlette, body: Callable[[Get], Awaitable[None]]) -> None:
    """`body` with a client of the app in-process, all in one event loop (the page's locks live in it)."""

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dash.test") as client:
            await body(client.get)

    asyncio.run(main())


def test_the_page_shows_the_hand_worked_figures(served: Served) -> None:
    pages: list[httpx.Response] = []

    async def body(get: Get) -> None:
        pages.append(await get("/insights?since=3650d"))

    run(served[0], body)
    page = pages[0]
    assert page.status_code == 200
    html = page.text
    main = html.split('<main id="main">', 1)[1]
    assert "<strong>3.3d</strong>" not in main  # p90 is small print, the median is the headline
    assert "<strong>6.0h</strong> median <small>p90 3.3d</small>" in main  # lead time: 6 h, p90 80 h
    assert "<strong>43%</strong> <small>3 of 7 deploys</small>" in main
    assert "<strong>6.0h</strong> median <small>p90 10.0h; 4 restores, 0 automatic</small>" in main
    assert "<strong>14%</strong> <small>1 of 7</small>" in main  # the dependabot build
    assert main.count('role="img"') == 2
    assert main.count("<details") == 2  # each chart's table
    assert 'href="/apps/web"' in main
    assert 'href="/apps/api"' in main
    assert "Change failure rate" in main.split("What the measures mean", 1)[1]
    assert not re.search(r"\sstyle=|<script|<style", main)  # the CSP allows neither


def test_an_unknown_window_falls_back_to_30_days(served: Served) -> None:
    async def body(get: Get) -> None:
        page = await get("/insights?since=whenever")
        assert page.status_code == 200
        assert 'aria-current="page" class="current">30d<' in page.text

    run(served[0], body)


def test_the_history_is_read_again_only_when_it_changed(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, controller, repo = served
    reads: list[str] = []
    import tagtrail.serve.web.insights as module

    real = module.read_facts

    def counting(*args: object) -> object:
        reads.append("read")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "read_facts", counting)

    async def body(get: Get) -> None:
        await get("/insights")
        await get("/insights?since=7d")
        assert reads == ["read"]
        repo.manual(250, web="s1")  # a new deploy commit, made by the controller: its last commit changes
        controller.status.last_commit = repo.run("rev-parse", "HEAD")
        page = await get("/insights?since=3650d")
        assert reads == ["read", "read"]
        assert "<small>3 of 7 deploys</small>" in page.text  # a hand edit back to s1 (older): a restore
        assert "5 restores, 0 automatic" in page.text

    run(app, body)


def test_app_charts(served: Served) -> None:
    app, _, _ = served
    found = asyncio.run(app.state.web.dashboard.insights.app_charts("web"))
    assert found is not None
    assert [c.id for c in found.charts] == ["app-deploys", "app-lead"]


def test_charts_escape_data_and_carry_their_table() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events = [
        Event("a<b>", start + timedelta(days=1), "c1", "t", "deploy", "newer-build", lead=timedelta(hours=2)),
        Event("a<b>", start + timedelta(days=1, hours=3), "c2", "t", "restore", "rollback"),
        Event("a<b>", start + timedelta(days=3), "c3", "t", "deploy", "newer-build", lead=timedelta(days=9)),
    ]
    chart = deploys_over_time("d", events, start, start + timedelta(days=6), "Deploys of <x>")
    assert "<x>" not in chart.svg
    assert "Deploys of &lt;x&gt; per day" in chart.svg
    assert chart.rows == (("2025-01-02", "1", "1"), ("2025-01-04", "1", "0"))
    assert chart.svg.count('class="mark"') == 1  # the restore, on the day it happened
    lead = lead_time_distribution("l", events, "Lead")
    assert dict(lead.rows)["1–4h"] == "1"
    assert dict(lead.rows)["> 7d"] == "1"
    weekly = deploys_over_time("w", events, start, start + timedelta(days=200), "Deploys")
    assert weekly.title == "Deploys per week"
    assert weekly.rows == (("2025-01-01", "2", "1"),)
    assert T0  # the shared timeline's origin is importable for the browser test


def test_deploys_are_counted_on_their_calendar_day() -> None:
    """A window that starts at 14:30 puts a deploy at 09:00 on the day it happened, not the day before;
    in the zone asked for, the day is that zone's (issue 24, 11)."""
    start = datetime(2025, 1, 1, 14, 30, tzinfo=UTC)
    at = datetime(2025, 1, 5, 9, 0, tzinfo=UTC)
    events = [Event("web", at, "c1", "t", "deploy", "newer-build")]
    chart = deploys_over_time("d", events, start, start + timedelta(days=6), "Deploys")
    assert chart.rows == (("2025-01-05", "1", "0"),)
    tokyo = deploys_over_time(
        "d", events, start, start + timedelta(days=6), "Deploys", zone=ZoneInfo("Asia/Tokyo")
    )
    assert tokyo.rows == (("2025-01-05", "1", "0"),)  # 18:00 in Tokyo
    late = [Event("web", datetime(2025, 1, 5, 16, 0, tzinfo=UTC), "c2", "t", "deploy", "newer-build")]
    tokyo = deploys_over_time(
        "d", late, start, start + timedelta(days=6), "Deploys", zone=ZoneInfo("Asia/Tokyo")
    )
    assert tokyo.rows == (("2025-01-06", "1", "0"),)  # 01:00 the next day in Tokyo


def test_reading_the_page_needs_a_session_when_the_dashboard_is_not_public(tmp_path: Path) -> None:
    repo, _ = timeline(tmp_path / "mono")
    config = repo.root / "tagtrail.yaml"
    config.write_text(CONFIG_TEXT + "serve:\n  public: false\n")
    app = create_app(Controller(config), {}, run=False)

    async def body(get: Get) -> None:
        page = await get("/insights")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/insights"

    run(app, body)
