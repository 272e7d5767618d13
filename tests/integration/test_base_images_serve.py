"""`tagtrail serve`'s part of issue 17, with real buildah builds and the real registry: the base watch tells a
moved base once, rebuilds at most once per app and base digest (through GitHub's workflow_dispatch, against a
local stand-in, or here with buildah), and the rebuild deploys with reason base-image; the dashboard and
/metrics show it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from bench.baseimage import BASE_DIGEST, build_and_declare, buildah_storage, lab, labels_of, publish_base
from bench.cli import run
from bench.git import commit, git
from bench.githubapi import GitHubStandIn
from bench.serve import ServeProcess, wait_for
from tagtrail.adapters.baseimages import AppBase
from tagtrail.adapters.baseimages.rebuild import Ledger
from tagtrail.adapters.history import default_log_path
from tagtrail.adapters.notify import Message, Notifier
from tagtrail.adapters.registry import RegistryClient
from tagtrail.config import load_config
from tagtrail.errors import NotLeader
from tagtrail.reconcile import Reconciler, Report
from tagtrail.serve.controller.bases import BaseWatch, Deploy
from tagtrail.serve.metrics import Metrics
from tagtrail.targets.factory import open_project
from tagtrail_demo import RegistryServer

__all__ = ["buildah_storage", "lab"]  # fixtures


class Told(Notifier):
    """Notifications kept in a list (apprise's own delivery is tested elsewhere)."""

    def __init__(self) -> None:
        super().__init__([])
        self.messages: list[Message] = []

    async def send_async(self, message: Message) -> bool:
        self.messages.append(message)
        return True


def configure(root: Path, base_images: str) -> Path:
    """tagtrail.yaml with a base_images: section, committed (serve reads config from git)."""
    path = root / "tagtrail.yaml"
    text = path.read_text().split("base_images:")[0] + base_images
    commit(root, {"tagtrail.yaml": text}, "base_images settings")
    return path


async def watch_once(
    path: Path, watch: BaseWatch, deploy: Deploy | None = None, *, leads: bool = True
) -> list[AppBase]:
    """One turn of serve's base watch on this project, with a reconciler as serve builds one (a follower's
    where `leads` is false: its fence says another replica holds the Lease)."""
    config = load_config(path)
    async with RegistryClient(config.registries) as client:
        reconciler = Reconciler(open_project(config, path, client))
        if not leads:
            reconciler.project.fence.by = _not_leader

        async def deploy_now(apps: set[str]) -> object:
            return await reconciler.run(sorted(apps), actor="tagtrail serve", automatic=True)

        return await watch.run_once(reconciler, asyncio.Lock(), deploy or deploy_now)


async def deploy_as_serve(path: Path, watch: BaseWatch) -> Report:
    """A reconcile of every app, as serve runs it: its reconciler knows the apps on a moved base."""
    config = load_config(path)
    async with RegistryClient(config.registries) as client:
        reconciler = Reconciler(open_project(config, path, client))
        reconciler.bases_moved = watch.moved
        return await reconciler.run(actor="tagtrail serve", automatic=True)


def _not_leader() -> None:
    raise NotLeader("another replica holds the Lease")


async def _never(apps: set[str]) -> object:
    raise AssertionError(f"nothing deploys at once through GitHub, asked for {apps}")


def test_serve_dispatches_the_github_workflow_once_per_app_and_base_digest(
    capsys: pytest.CaptureFixture[str],
    lab: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """GitHub's workflow_dispatch, against a local stand-in that answers as GitHub's REST description says
    (tests/bench/githubapi.py): web is set to rebuild, api only to notify; a refused dispatch is tried
    again at the next check; a base republished again is rebuilt again, once."""
    root, base, tmp = lab["root"], str(lab["base"]), lab["tmp"]
    assert isinstance(root, Path)
    assert isinstance(tmp, Path)
    build_and_declare(capsys, root, "web", "api", "static")
    token = "ghp_" + "s3cret" * 6
    github = GitHubStandIn("acme/homelab", token, {"build.yml": ("apps",)}).start()
    try:
        path = configure(
            root,
            "base_images:\n  on_change: rebuild\n  apps: {api: notify}\n"
            f"  github: {{repository: acme/homelab, api_url: '{github.url}', token_env: GH_TOKEN}}\n",
        )
        second = publish_base(base, "base 2\n", tmp)
        metrics, told = Metrics(), Told()
        watch = BaseWatch(metrics, lambda: told)
        monkeypatch.setenv("GH_TOKEN", token)
        follower = BaseWatch(Metrics(), lambda: told)  # a replica that does not lead sees, and acts not
        seen = {r.app: r.moved for r in asyncio.run(watch_once(path, follower, _never, leads=False))}
        assert (seen["web"], seen["api"], follower.moved) == (True, True, frozenset({"web", "api"}))
        assert (github.dispatches, told.messages) == ([], [])

        monkeypatch.setenv("GH_TOKEN", "ghp_wrong")
        caplog.set_level(logging.DEBUG, logger="tagtrail")
        rows = {r.app: r for r in asyncio.run(watch_once(path, watch, _never))}
        assert (rows["web"].moved, rows["api"].moved, rows["static"].moved) == (True, True, False)
        assert github.refused == [401]
        assert github.dispatches == []
        assert told.messages[-1].title == "tagtrail: a base-image rebuild failed"
        assert "(401): Bad credentials" in told.messages[-1].body

        monkeypatch.setenv("GH_TOKEN", token)
        for _ in range(2):  # a second check of the same move starts nothing
            asyncio.run(watch_once(path, watch, _never))
        assert github.dispatches == [{"workflow": "build.yml", "ref": "main", "inputs": {"apps": "web"}}]
        assert metrics.base_moved._value.get() == 2  # web and api
        moves = [m for m in told.messages if m.title == "tagtrail: base images moved"]
        assert len(moves) == 1  # told once per (app, base digest)
        assert f"api: {base} moved" in moves[0].body
        assert second[:19] in moves[0].body

        # what the dispatched workflow does: build web at the branch's head (config and deploy commits
        # sit on top of the running one); the build deploys, and the history says why
        time.sleep(1.1)  # a later second in the tag than the running build's
        code, out, err = run(capsys, "build", "web", "--push", "--json")
        assert code == 0, err
        rebuilt = json.loads(out)[0]["reference"]
        report = asyncio.run(deploy_as_serve(path, watch))
        [web] = [p for p in report.planned if p.app == "web"]
        assert (web.decision.reason, web.decision.target_tag) == ("base-image", rebuilt.rsplit(":", 1)[1])
        assert "on its moved base image" in web.decision.sentence

        publish_base(base, "base 3\n", tmp)
        asyncio.run(watch_once(path, watch, _never))
        assert len(github.dispatches) == 2
        assert token not in caplog.text + capsys.readouterr().err
        assert all(token not in m.body for m in told.messages)
    finally:
        github.stop()


def test_serve_rebuilds_here_and_the_rebuild_deploys_with_reason_base_image(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """The local-builder path for real: serve's watch runs `tagtrail build --push` (buildah) for the moved
    app, the new build deploys through the policy at once, and the history says base-image."""
    root, registry, base, tmp = lab["root"], lab["registry"], str(lab["base"]), lab["tmp"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    assert isinstance(tmp, Path)
    before = build_and_declare(capsys, root, "web")["web"]
    path = configure(root, "base_images:\n  on_change: rebuild\n  local: {builder: buildah}\n")
    second = publish_base(base, "base 1, patched\n", tmp)
    time.sleep(1.1)  # the rebuild's tag carries the time to the second: it must be a later one
    watch = BaseWatch(Metrics(), Told)
    rows = asyncio.run(watch_once(path, watch))
    assert [r.app for r in rows if r.moved] == ["web"]

    deployed = (root / "deploy/prod.yaml").read_text().split("image: ")[1].strip()
    assert deployed != before
    assert deployed.split(":")[-2].split(".")[-1] == before.split(":")[-2].split(".")[-1]  # the same commit
    assert asyncio.run(labels_of(registry, deployed))[BASE_DIGEST] == second
    code, out, err = run(capsys, "history", "web", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["reason"] == "base-image"

    rows = asyncio.run(watch_once(path, watch))  # what runs now is on the new base: nothing to do
    assert [r.moved for r in rows if r.app == "web"] == [False]
    assert len(git(root, "worktree", "list").splitlines()) == 1  # the rebuild's worktree is gone
    ledger = Ledger(default_log_path())
    assert [(app, digest) for app, digest, _ in ledger.started()] == [("web", second)]


def test_serve_shows_a_moved_base_on_the_dashboard_and_in_metrics(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """`tagtrail serve` as it runs: the watch checks every second; the base moves under it."""
    root, base, tmp = lab["root"], str(lab["base"]), lab["tmp"]
    assert isinstance(root, Path)
    assert isinstance(tmp, Path)
    build_and_declare(capsys, root, "web", "static")
    configure(root, "base_images:\n  interval: 1s\nserve:\n  pull: false\n")
    served = ServeProcess(root).start()
    try:
        gauge = "tagtrail_apps_on_moved_base_image"
        wait_for(lambda: "base moved" not in served.get("/").text and served.metric(gauge) == 0.0)
        publish_base(base, "base 1, patched\n", tmp)
        wait_for(lambda: served.metric(gauge) == 1.0, what=f"{gauge} 1\n{served.output()}")
        page = served.get("/").text
        assert "1 on a moved base image" in page
        assert page.count('class="badge behind base-moved"') == 1
        detail = served.get("/apps/web").text
        assert "Base image" in detail
        assert "base moved</span> its tag now points to" in detail
        assert "none (FROM scratch)" in served.get("/apps/static").text
        assert (
            served.metric("tagtrail_base_image_rebuilds_total", app="web", via="local") == 0.0
        )  # notify only
    finally:
        assert served.stop() == 0


def test_serve_rebuilds_and_deploys_a_moved_base_on_its_own(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """The whole loop in a running `tagtrail serve`: the base moves, serve builds the running commit with
    buildah, deploys it in a commit whose reason is base-image, and then sees nothing left to do."""
    root, registry, base, tmp = lab["root"], lab["registry"], str(lab["base"]), lab["tmp"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    assert isinstance(tmp, Path)
    before = build_and_declare(capsys, root, "web")["web"]
    configure(
        root,
        "base_images:\n  interval: 1s\n  on_change: rebuild\n  local: {builder: buildah}\nserve:\n  pull: false\n",
    )
    served = ServeProcess(root).start()
    try:
        time.sleep(1.1)  # the rebuild's tag must carry a later second than the running build's
        second = publish_base(base, "base 1, patched in place\n", tmp)
        rebuilds = ("tagtrail_base_image_rebuilds_total", {"app": "web", "via": "local"})
        wait_for(
            lambda: served.metric(rebuilds[0], **rebuilds[1]) == 1.0, 120, f"a rebuild\n{served.output()}"
        )

        def deployed() -> str | None:
            text = (root / "deploy/prod.yaml").read_text()
            return text.split("image: ")[1].strip() if before not in text else None

        now = wait_for(deployed, 60, f"the deploy commit\n{served.output()}")
        wait_for(lambda: served.metric("tagtrail_apps_on_moved_base_image") == 0.0, 30, "the watch to see it")
        assert served.metric(rebuilds[0], **rebuilds[1]) == 1.0  # once, whatever the checks since
    finally:
        assert served.stop() == 0
    assert asyncio.run(labels_of(registry, now))[BASE_DIGEST] == second
    code, out, err = run(capsys, "history", "web", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["reason"] == "base-image"
