"""The dashboard in a real browser (Debian's chromium, driven by Playwright; never a downloaded browser):
load it, see the apps, watch a push arrive live, sign in, roll back, see the new commit and the pin, unpin.
Refusals (no session, no CSRF token, another site's form) are asserted over plain HTTP."""

from __future__ import annotations

import json
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bench.git import Remote, git
from bench.homelab import APPS, Homelab
from bench.serve import DASHBOARD_TOKEN, Receiver, ServeProcess, ci_run, remote_log, serve_env, wait_for
from tagtrail.adapters.trailers import groups as trailers
from tagtrail_demo import RegistryServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    yield context.new_page()
    context.close()


def test_the_dashboard_shows_deploys_and_acts_on_them(
    served: ServeProcess,
    lab: Homelab,
    page: Page,
    browser: Browser,
    notifying_registry: RegistryServer,
    file_remote: Remote,
    receiver: Receiver,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(served.url)
    rows = page.locator("table.apps tbody tr")
    expect(rows).to_have_count(len(APPS))
    lights = page.locator('tr[data-app="lights"]')
    expect(lights).to_contain_text(lab.newest["lights"].tag)
    expect(lights).to_contain_text("current")

    # A CI run pushes a new build: the open page shows it without a reload (server-sent events).
    tag, _ = ci_run(lab, notifying_registry, ("lights",))
    expect(lights).to_contain_text(tag, timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)

    # Reading is open; acting needs a sign-in.
    page.click('a.app:text("lights")')
    expect(page.locator("h1")).to_contain_text("lights")
    expect(page.locator("p.hint")).to_contain_text("Sign in")
    expect(page.locator("button", has_text="Roll back to this")).to_have_count(0)
    page.click("p.hint a")
    page.fill('input[name="name"]', "sam")
    page.fill('input[name="token"]', "not-the-token")
    page.click("form.login button")
    expect(page.locator(".banner.bad")).to_contain_text("That token is not right.")
    page.fill('input[name="name"]', "sam")
    page.fill('input[name="token"]', DASHBOARD_TOKEN)
    page.click("form.login button")
    expect(page).to_have_url(re.compile(r"/apps/lights$"))
    expect(page.locator(".who")).to_have_text("sam")

    # Roll back to the build that ran before (the second row of the history).
    history = page.locator("table.history tbody tr")
    expect(history.first).to_contain_text(tag)
    previous = lab.newest["lights"].tag
    expect(history.nth(1)).to_contain_text(previous)
    history.nth(1).locator("button", has_text="Roll back to this").click()
    flash = page.locator(".banner.good")
    expect(flash).to_contain_text("lights: commit")
    commit = git(file_remote.path, "rev-parse", "main")
    assert commit[:12] in flash.inner_text()
    message = git(file_remote.path, "log", "-1", "--format=%B", "main")
    group = trailers(message)[0]
    assert (group["Tagtrail-App"], group["Tagtrail-Reason"], group["Tagtrail-Actor"]) == (
        "lights",
        "rollback",
        "sam (dashboard)",
    )
    assert group["Tagtrail-To"].split("@")[0].endswith(f":{previous}")
    wait_for(
        lambda: any("lights rolled back" in t for t in receiver.titles()),
        what=f"a notification: {receiver.titles()}",
    )
    told = next(m for m in receiver.messages if "lights rolled back" in m["title"])
    assert "sam (dashboard)" in told["message"]
    assert DASHBOARD_TOKEN not in json.dumps(receiver.messages)
    expect(page.locator(".facts")).to_contain_text(previous)
    expect(page.locator("h1 .badge")).to_have_text("pinned")
    expect(page.locator("table.history tbody tr").first).to_contain_text(previous)
    page.screenshot(path=SCREENSHOTS / "app-pinned.png", full_page=True)

    # The controller honours the pin: a reconcile does not move lights forward again.
    assert "deploy: lights" not in remote_log(file_remote)[0]

    # Unpin: automatic deploys resume and bring the newest build back.
    page.click("button:text('Unpin')")
    expect(page.locator(".banner.good")).to_contain_text("commit")
    wait_for(
        lambda: f"deploy: lights {tag}" in " ".join(remote_log(file_remote)[:1]),
        what="the redeploy after unpin",
    )
    page.goto(f"{served.url}/apps/lights")
    expect(page.locator("h1 .badge")).not_to_have_text("pinned")
    expect(page.locator("table.history tbody tr").first).to_contain_text(tag)

    # A phone: the table becomes cards that still read well.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    small = phone.new_page()
    small.goto(served.url)
    card = small.locator('tr[data-app="lights"]')
    expect(card).to_be_visible()
    box = card.bounding_box()
    assert box is not None
    assert box["width"] <= 390  # no sideways scrolling
    small.screenshot(path=SCREENSHOTS / "dashboard-phone.png", full_page=True)
    phone.close()


def test_actions_need_a_session_a_csrf_token_and_this_site(served: ServeProcess, file_remote: Remote) -> None:
    before = remote_log(file_remote)
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        assert client.post("/apps/lights/unpin", data={"csrf": "x"}).status_code == 401
        signed = client.post("/login", data={"name": "sam", "token": DASHBOARD_TOKEN, "next": "/"})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        # the app's actions (each form with its CSRF token) are shown once serve's first reconcile has read it
        csrf = wait_for(
            lambda: re.search(r'name="csrf" value="([^"]+)"', client.get("/apps/lights").text),
            what="the app page's actions",
        )
        assert client.post("/apps/lights/deploy", data={}).status_code == 403
        assert client.post("/apps/lights/deploy", data={"csrf": "forged"}).status_code == 403
        other_site = client.post(
            "/apps/lights/deploy", data={"csrf": csrf[1]}, headers={"Origin": "https://evil.example"}
        )
        assert other_site.status_code == 403
        assert (
            client.post(
                "/login", data={"token": DASHBOARD_TOKEN}, headers={"Origin": "https://evil.example"}
            ).status_code
            == 403
        )
        fine = client.post("/apps/lights/deploy", data={"csrf": csrf[1]}, headers={"Origin": served.url})
        assert fine.status_code == 303
        assert "already running" in client.get(fine.headers["location"]).text  # the server's own message
        client.post("/logout")
        assert client.post("/apps/lights/deploy", data={"csrf": csrf[1]}).status_code == 401
    assert remote_log(file_remote) == before


def test_reading_can_be_behind_the_sign_in_too(served: ServeProcess, lab: Homelab) -> None:
    config = lab.root / "tagtrail.yaml"
    config.write_text(config.read_text().replace("serve:\n", "serve:\n  public: false\n"))
    served.send(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in served.output(), what="the reload")
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        first = client.get("/apps/lights")
        assert (first.status_code, first.headers["location"]) == (303, "/login?next=/apps/lights")
        assert client.get("/events").status_code == 401
        assert client.get("/healthz").status_code == 200  # the probes and metrics stay open
        assert client.get("/metrics").status_code == 200
        client.post("/login", data={"name": "sam", "token": DASHBOARD_TOKEN, "next": "/"})
        assert client.get("/apps/lights").status_code == 200


def test_pages_forbid_framing_and_foreign_code(served: ServeProcess) -> None:
    for path in ("/", "/apps/lights", "/login", "/healthz"):
        headers = served.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"


def test_a_link_cannot_put_words_on_the_dashboard(served: ServeProcess) -> None:
    """The banner shows only messages the server made: `?error=…` in a link someone sends is not one."""
    page = served.get("/apps/lights", params={"error": "Your token expired: sign in at evil.example"}).text
    assert "evil.example" not in page
    page = served.get("/", params={"flash": "All good, paste your token at evil.example"}).text
    assert "evil.example" not in page


def test_sign_out_refuses_other_sites(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        client.post("/login", data={"name": "sam", "token": DASHBOARD_TOKEN, "next": "/"})
        cross = client.post("/logout", headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        page = client.get("/apps/lights").text
        assert re.search(r'name="csrf" value="[^"]+"', page)  # still signed in


def test_sign_in_slows_down_a_guesser(served: ServeProcess) -> None:
    """300 wrong tokens used to get 300 quick 401s; after a small burst a guesser waits, told how long, and
    then even the right token waits (from that client), so guessing a 32-character token is hopeless."""
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        answers = [
            client.post("/login", data={"name": "x", "token": f"guess-{n}", "next": "/"}).status_code
            for n in range(12)
        ]
        assert answers[:5] == [401] * 5
        assert answers[-1] == 429
        right = client.post("/login", data={"token": DASHBOARD_TOKEN, "next": "/"})
        assert right.status_code == 429
        assert f"try again in {right.headers['retry-after']} s" in right.text


@pytest.mark.parametrize("variable", ["TAGTRAIL_TOKEN", "TAGTRAIL_REPLICA_SECRET"])
def test_serve_refuses_a_short_dashboard_token_or_replica_secret(lab: Homelab, variable: str) -> None:
    process = ServeProcess(lab.root, env=serve_env({variable: "short-token"})).start(ready=False)
    assert process.process is not None
    assert process.process.wait(timeout=60) == 1
    output = process.output()
    assert f"{variable} is 11 characters; use at least 32" in output
    assert "Traceback" not in output
    assert "short-token" not in output
