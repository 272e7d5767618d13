"""Environments against the real registry and a real git remote: a build reaches prod only after it ran
well in staging for the soak; a build rolled back in staging never reaches prod while the good one before
it stays there; a manual gate waits for `promote`; a forced promotion is recorded with who and why; each
environment's history and pins are its own; the soak's start is what ran, so a new process keeps it."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from bench.cli import run
from bench.git import Remote, commit, git, init_repo
from bench.homelab import SCHEME
from bench.lanes import lanes_files
from bench.serve import DASHBOARD_TOKEN, ServeProcess, wait_for
from tagtrail.adapters.history import DecisionLog
from tagtrail.adapters.trailers import groups as trailers
from tagtrail.serve.controller.controller import Controller
from tagtrail_demo import ImagePusher, RegistryServer

START = datetime(2026, 1, 1, tzinfo=UTC)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Lanes:
    root: Path
    remote: Remote
    image: str
    pusher: ImagePusher
    builds: list[str] = field(default_factory=list)  # tags pushed, oldest first

    def push(self) -> str:
        """A new commit of the app and its build, newer than every one before."""
        n = len(self.builds)
        sha = commit(self.root, {f"apps/web/v{n}.txt": f"{n}\n"}, f"change {n}")
        git(self.root, "push", "-q", "origin", "main")
        tag = SCHEME.format(branch="main", sha=sha, time=START + timedelta(hours=n))
        repo = self.image.split("/", 1)[1] + "/web"
        self.pusher.push_image(
            repo, tag, created=START + timedelta(hours=n), labels={"org.opencontainers.image.revision": sha}
        )
        self.builds.append(tag)
        return tag

    def runs(self, env: str) -> str:
        """The tag the environment's deploy file names, as the remote has it."""
        text = git(self.remote.path, "show", f"main:deploy/{env}.yaml")
        return text.split("/web:")[1].split("@")[0].strip()

    def plan(self, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
        code, out, err = run(capsys, "plan", "--json")
        assert code == 0, err
        (web,) = json.loads(out)
        return dict(web["environments"])


@pytest.fixture
def lab(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    file_remote: Remote,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Lanes:
    """A repository with a staging and a prod lane, prod's settings (`from: staging` and the param)."""
    prod = getattr(request, "param", "")
    image = f"{registry.host}/{repo_name.replace('/', '-')}"
    root = tmp_path / "lab"
    files = lanes_files(image, registry.host, ["web"], prod)
    init_repo(root, files, "the lanes")
    git(root, "config", "user.name", "Ann Operator")
    git(root, "config", "user.email", "ann@example.com")
    git(root, "remote", "add", "origin", file_remote.url)
    git(root, "push", "-q", "-u", "origin", "main")
    monkeypatch.chdir(root)
    return Lanes(root, file_remote, image, pusher)


def deploy(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, "deploy", *args)
    assert code == 0, out + err
    return out + err


def held_at_the_gate(capsys: pytest.CaptureFixture[str], lab: Lanes, reason: str) -> tuple[str, str]:
    """A new build, deployed: in staging, held from prod for `reason`; the build and what prod's plan says."""
    build = lab.push()
    deploy(capsys)
    assert (lab.runs("staging"), lab.runs("prod")) == (build, "bootstrap")
    prod = lab.plan(capsys)["prod"]
    assert (prod["action"], prod["reason"]) == ("hold", reason)
    return build, prod["sentence"]


@pytest.mark.parametrize("lab", ["    soak: 0s\n"], indirect=True)
def test_with_no_soak_a_push_reaches_prod_in_one_deploy_with_its_evidence(
    capsys: pytest.CaptureFixture[str], lab: Lanes
) -> None:
    build = lab.push()
    deploy(capsys)
    assert (lab.runs("staging"), lab.runs("prod")) == (build, build)
    message = git(lab.remote.path, "log", "-1", "--format=%B", "main")
    (group,) = trailers(message)
    assert group["Tagtrail-Reason"] == "promoted"
    assert group["Tagtrail-Promoted-From"] == "staging"
    assert group["Tagtrail-Evidence"].startswith("sha256:")
    assert "rolled out " in group["Tagtrail-Evidence"]
    # each environment's history is its own, and the decision log's rows name their environment
    code, out, _ = run(capsys, "history", "web", "--env", "prod", "--json")
    assert code == 0
    assert [e["reason"] for e in json.loads(out)] == ["promoted", "manual"]
    code, out, _ = run(capsys, "history", "web", "--env", "staging", "--json")
    assert [e["reason"] for e in json.loads(out)] == ["running-unknown", "manual"]
    # delivery insights per environment: each one's deploys, lead time and change failure rate
    code, out, err = run(capsys, "report", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert sorted(report) == ["prod", "staging"]
    assert report["prod"]["overall"]["deploys"] == report["staging"]["overall"]["deploys"] == 1
    assert report["prod"]["overall"]["change_failure_rate"] == 0
    code, _, err = run(capsys, "history", "web")
    assert code == 1
    assert err.strip() == "error: there are several environments (staging, prod): say which with --env ENV"


@pytest.mark.parametrize("lab", ["    soak: 4s\n"], indirect=True)
def test_a_build_reaches_prod_only_after_its_soak_counted_from_what_ran(
    capsys: pytest.CaptureFixture[str], lab: Lanes
) -> None:
    build, said = held_at_the_gate(capsys, lab, "soaking")
    assert "s left of 4s" in said
    # Each command is a new process's worth of state: the soak's start is the staging deploy's row, so the
    # gate opens when that row is 4 s old however many times tagtrail started meanwhile.
    staging_row = DecisionLog(Path.home() / ".local/state/tagtrail/decisions.sqlite", "staging").outcomes()
    deployed_at = next(r.time for r in staging_row if r.action == "deploy")
    while datetime.now(UTC) - deployed_at < timedelta(seconds=4):
        time.sleep(0.5)
    assert lab.plan(capsys)["prod"]["reason"] == "promoted"
    deploy(capsys)
    assert lab.runs("prod") == build


@pytest.mark.parametrize("lab", ["    soak: 0s\n"], indirect=True)
def test_a_build_rolled_back_in_staging_never_reaches_prod_while_the_good_one_stays(
    capsys: pytest.CaptureFixture[str], lab: Lanes
) -> None:
    good = lab.push()
    deploy(capsys)
    assert lab.runs("prod") == good
    bad = lab.push()
    deploy(capsys, "--env", "staging")
    assert (lab.runs("staging"), lab.runs("prod")) == (bad, good)
    code, _, err = run(capsys, "rollback", "web", "--env", "staging")
    assert code == 0, err
    assert lab.runs("staging") == good
    deploy(capsys)
    assert (lab.runs("staging"), lab.runs("prod")) == (good, good)
    prod = lab.plan(capsys)["prod"]
    assert (prod["action"], prod["reason"]) == ("hold", "failed-in-source")
    assert f"{bad} failed in staging" in prod["sentence"]
    # the pin is staging's own: tagtrail.yaml holds it under environments.staging
    staging_pins = (lab.root / "tagtrail.yaml").read_text().split("  prod:")[0]
    assert f"web: {good}" in staging_pins
    assert lab.plan(capsys)["staging"]["reason"] == "pinned"
    # a rollback in prod does not touch staging
    before = git(lab.remote.path, "show", "main:deploy/staging.yaml")
    code, _, err = run(capsys, "rollback", "web", "--env", "prod", "--to", "bootstrap")
    assert code == 1  # bootstrap is no build; what matters is that staging stays as it was
    assert git(lab.remote.path, "show", "main:deploy/staging.yaml") == before


@pytest.mark.parametrize("lab", ["    approval: manual\n"], indirect=True)
def test_a_manual_gate_waits_for_promote_and_a_forced_promotion_is_recorded(
    capsys: pytest.CaptureFixture[str], lab: Lanes
) -> None:
    first, _ = held_at_the_gate(capsys, lab, "awaiting-approval")
    code, _, err = run(capsys, "promote", "web")
    assert code == 0, err
    assert lab.runs("prod") == first
    (group,) = trailers(git(lab.remote.path, "log", "-1", "--format=%B", "main"))
    assert (group["Tagtrail-Reason"], group["Tagtrail-Promoted-From"]) == ("promoted", "staging")
    assert group["Tagtrail-Actor"] == "tagtrail promote (Ann Operator <ann@example.com>)"
    # staging held at the first build: the next one is not in staging, its gate is closed
    code, _, err = run(capsys, "pin", "web", first, "--env", "staging")
    assert code == 0, err
    second = lab.push()
    deploy(capsys)
    assert (lab.runs("staging"), lab.runs("prod")) == (first, first)
    code, _, err = run(capsys, "promote", "web", second)
    assert code == 1
    assert err.startswith(f"error: the gate of prod is closed for web {second}: ")
    code, _, err = run(capsys, "promote", "web", second, "--force")
    assert (code, err.strip()) == (1, "error: a forced promotion says why: add --why TEXT")
    code, _, err = run(capsys, "promote", "web", second, "--force", "--why", "the fix for INC-7")
    assert code == 0, err
    assert (lab.runs("staging"), lab.runs("prod")) == (first, second)
    (group,) = trailers(git(lab.remote.path, "log", "-1", "--format=%B", "main"))
    assert group["Tagtrail-Reason"] == "promote-forced"
    assert (
        group["Tagtrail-Evidence"]
        == "forced by tagtrail promote (Ann Operator <ann@example.com>): the fix for INC-7"
    )
    code, out, _ = run(capsys, "history", "web", "--env", "prod", "--json")
    assert [e["reason"] for e in json.loads(out)] == ["promote-forced", "promoted", "manual"]
    forced = DecisionLog(Path.home() / ".local/state/tagtrail/decisions.sqlite", "prod").recent("web", 1)[0]
    assert (forced.reason, forced.outcome) == ("promote-forced", "pushed")
    assert "the fix for INC-7" in forced.sentence
    # prod's pins are its own: staging's pin did not hold prod
    assert lab.plan(capsys)["prod"]["reason"] != "pinned"
    # retention keeps what any environment runs: prod's build, which staging never ran, as running
    code, out, err = run(capsys, "prune", "--json")
    assert code == 0, err
    (web,) = json.loads(out)["apps"]
    verdicts = {t["tag"]: t["why"] for t in web["tags"]}
    assert (verdicts[second], verdicts[first]) == ("deployed", "deployed")


@pytest.mark.parametrize("lab", ["    soak: 4s\n"], indirect=True)
def test_serve_promotes_after_the_soak_and_a_restart_mid_soak_keeps_its_start(lab: Lanes) -> None:
    build = lab.push()
    config = lab.root / "tagtrail.yaml"

    async def one_turn(controller: Controller) -> None:
        await controller.reconcile()

    async def first() -> datetime:
        controller = Controller(config)
        try:
            await one_turn(controller)
        finally:
            await controller.stop()
        return datetime.now(UTC)

    async def restarted(deployed_at: datetime) -> list[str]:
        controller = Controller(config)  # a new process's worth of state, in the middle of the soak
        try:
            await one_turn(controller)
            seen = [lab.runs("prod")]
            while datetime.now(UTC) - deployed_at < timedelta(seconds=4):
                await asyncio.sleep(0.5)
            await one_turn(controller)
            return [*seen, lab.runs("prod")]
        finally:
            await controller.stop()

    asyncio.run(first())
    assert (lab.runs("staging"), lab.runs("prod")) == (build, "bootstrap")
    log = DecisionLog(Path.home() / ".local/state/tagtrail/decisions.sqlite", "staging")
    deployed_at = next(r.time for r in log.outcomes() if r.action == "deploy")
    time.sleep(1)  # the restart comes a while after the staging deploy: a soak started then would be later
    assert asyncio.run(restarted(deployed_at)) == ["bootstrap", build]
    promoted = DecisionLog(log.path, "prod").recent("web", 1)[0]
    assert (promoted.reason, promoted.actor, promoted.automatic) == ("promoted", "tagtrail serve", True)


@pytest.mark.parametrize("lab", ["    approval: manual\n"], indirect=True)
def test_the_dashboard_shows_each_environment_and_promotes_when_signed_in(lab: Lanes) -> None:
    build = lab.push()
    served = ServeProcess(lab.root).start()
    try:
        with httpx.Client(base_url=served.url, follow_redirects=False) as client:
            signed = client.post("/login", data={"name": "ann", "token": DASHBOARD_TOKEN, "next": "/"})
            assert signed.status_code == 303
            wait_for(
                lambda: "awaiting-approval" in client.get("/apps/web").text,
                what="prod waiting at its manual gate on the app page",
            )
            assert "awaiting-approval" in client.get("/").text  # the row across environments
            refused = client.post("/apps/web/promote", data={"to": "prod"}, headers={"Origin": served.url})
            assert refused.status_code == 403  # no CSRF token: nothing promoted
        assert lab.runs("prod") == "bootstrap"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.goto(f"{served.url}/login?next=/apps/web")
            page.fill('input[name="name"]', "ann")
            page.fill('input[name="token"]', DASHBOARD_TOKEN)
            page.click("form.login button")
            expect(page.locator('tr[data-environment="staging"]')).to_contain_text(build)
            expect(page.locator('tr[data-environment="prod"]')).to_contain_text("awaiting-approval")
            page.click('button:text("Promote to prod")')
            expect(page.locator(".banner.good")).to_contain_text("web: commit")
            # each environment's history on the app page: prod's own, with the promotion
            expect(page.locator('table.history[data-environment="prod"] tbody tr').first).to_contain_text(
                "promoted"
            )
            # insights per environment: the deploys to each, the lead time to it, its change failure rate
            page.goto(f"{served.url}/insights")
            for env in ("staging", "prod"):
                row = page.locator(f'table.environments tr[data-environment="{env}"] td')
                expect(row.nth(1)).to_have_text("1")
                expect(row.nth(4)).to_have_text("0%")
            browser.close()
        assert lab.runs("prod") == build
        (group,) = trailers(git(lab.remote.path, "log", "-1", "--format=%B", "main"))
        assert (group["Tagtrail-Reason"], group["Tagtrail-Promoted-From"]) == ("promoted", "staging")
        assert group["Tagtrail-Actor"] == "ann (dashboard)"
    finally:
        assert served.stop() == 0, served.output()


@pytest.mark.parametrize("lab", ["    soak: 3s\n"], indirect=True)
def test_serve_looks_again_when_a_soak_ends_without_waiting_for_its_interval(lab: Lanes) -> None:
    config = lab.root / "tagtrail.yaml"
    commit(lab.root, {"tagtrail.yaml": config.read_text() + "serve: {interval: 1h}\n"}, "poll hourly")
    git(lab.root, "push", "-q", "origin", "main")
    build = lab.push()
    served = ServeProcess(lab.root).start()
    try:
        wait_for(lambda: lab.runs("staging") == build, what="staging to take the build")
        wait_for(
            lambda: lab.runs("prod") == build, what="prod to take it once its soak ended, not an hour later"
        )
    finally:
        assert served.stop() == 0, served.output()
