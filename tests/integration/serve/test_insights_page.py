"""The insights page and an app page's charts in a real browser (Debian's chromium, driven by Playwright),
on the hand-built history of bench.deployhistory dated to the last ten days: a desktop, a phone and dark
mode, with screenshots in build/screenshots/. The dashboard runs in-process under uvicorn with the
controller's last plan set by hand (no registry is needed to show what git holds)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bench.deployhistory import CONFIG_TEXT, timeline
from tagtrail.domain.policy import Decision, Reason, Running
from tagtrail.reconcile import Planned
from tagtrail.serve.controller import Controller
from tagtrail.serve.web.app import create_app
from tagtrail_demo.registry import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"
DARK_BACKGROUND = "rgb(20, 21, 23)"  # --bg in tagtrail.css under prefers-color-scheme: dark


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard of the hand-built history, its timeline ending 10 hours ago."""
    t0 = datetime.now(UTC) - timedelta(hours=160)
    repo, _ = timeline(tmp_path_factory.mktemp("insights") / "mono", t0)
    config = repo.root / "tagtrail.yaml"
    config.write_text(
        CONFIG_TEXT.replace("files: [deploy.yaml]", "files: [deploy.yaml]\n    push: false")
        + "serve:\n  public: true\n"
    )
    controller = Controller(config)
    for app, build in (("web", "s4"), ("api", "a1")):
        tag = repo.builds[build]
        decision = Decision(app, "nothing", Reason.UP_TO_DATE, "up to date", Running(tag, None), behind=0)
        controller.snapshot.planned.append(Planned(decision, f"registry.test/acme/{app}"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(controller, {}, run=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the dashboard did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _watch_csp(page: Page) -> list[str]:
    """Console messages that say the CSP blocked something (an inline style or script)."""
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    return blocked


def test_the_insights_page_on_a_desktop(browser: Browser, dashboard: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    blocked = _watch_csp(page)
    page.goto(f"{dashboard}/insights?since=30d")
    expect(page.locator("h1")).to_have_text("Delivery insights")
    measures = page.locator("dl.measures")
    expect(measures).to_contain_text("3 of 7 deploys")  # the change failure rate worked out by hand
    expect(measures).to_contain_text("6.0h")  # the median lead time
    charts = page.locator('svg.chart[role="img"]')
    expect(charts).to_have_count(2)
    expect(page.locator("svg.chart rect.mark")).not_to_have_count(0)  # restores on the timeline
    box = charts.first.bounding_box()
    assert box is not None
    assert box["height"] > 100
    # the table behind a chart: closed at first, its rows once opened
    details = page.locator("#chart-lead details")
    expect(details.locator("table")).to_be_hidden()
    details.locator("summary").click()
    expect(details.locator("tbody tr")).to_have_count(7)
    expect(details.locator("tbody tr").nth(1)).to_contain_text("1–4h")
    rows = page.locator("table.insights tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("web")
    page.screenshot(path=SCREENSHOTS / "insights.png", full_page=True)

    page.click('table.insights a.app:text("web")')
    expect(page.locator("h1")).to_contain_text("web")
    expect(page.locator(".charts.small svg.chart")).to_have_count(2)
    expect(page.locator(".charts.small svg.chart rect.mark")).not_to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "app-insights.png", full_page=True)
    assert blocked == []
    context.close()


def test_the_insights_page_on_a_phone_in_dark_mode(browser: Browser, dashboard: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, color_scheme=scheme
        )
        page = context.new_page()
        blocked = _watch_csp(page)
        page.goto(f"{dashboard}/insights?since=30d")
        expect(page.locator('svg.chart[role="img"]')).to_have_count(2)
        # nothing wider than the phone: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for chart in page.locator("svg.chart").all():
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] <= 390
        # the axis labels stay readable: at least 8 CSS pixels high
        label = page.locator("svg.chart text.axis").first.bounding_box()
        assert label is not None
        assert label["height"] >= 8
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        bar = page.evaluate("getComputedStyle(document.querySelector('svg.chart rect.bar')).fill")
        if scheme == "dark":
            assert background == DARK_BACKGROUND
            assert bar == "rgb(122, 162, 255)"  # --accent in dark mode: the bars follow the stylesheet
        else:
            assert background != DARK_BACKGROUND
        page.screenshot(path=SCREENSHOTS / f"insights-phone-{scheme}.png", full_page=True)
        assert blocked == []
        context.close()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    page = context.new_page()
    page.goto(f"{dashboard}/insights?since=30d")
    expect(page.locator("svg.chart")).to_have_count(2)
    page.screenshot(path=SCREENSHOTS / "insights-dark.png", full_page=True)
    context.close()
