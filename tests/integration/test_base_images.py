"""Issue 17 end to end, with real buildah builds and the real registry: a base image the test publishes and
then republishes under the same tag. `tagtrail build` records the base (annotations and labels, the digest
actually used), `tagtrail base-images` reports the move, and only then."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.baseimage import buildah_storage, publish_base
from bench.cli import run
from bench.git import commit, git, init_repo
from bench.githubapi import GitHubStandIn
from bench.serve import ServeProcess, wait_for
from tagtrail.baseimages import AppBase
from tagtrail.baseimages.rebuild import Ledger
from tagtrail.config import RegistryConfig, load_config
from tagtrail.controller.bases import BaseWatch, Deploy
from tagtrail.history import default_log_path
from tagtrail.metrics import Metrics
from tagtrail.notify import Message, Notifier
from tagtrail.reconcile import Reconciler, Report
from tagtrail.registry import ImageRef, Platform, RegistryClient
from tagtrail.sandbox import ImagePusher, RegistryServer

__all__ = ["buildah_storage"]  # a fixture, shared with test_build
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@pytest.fixture
def lab(
    registry: RegistryServer,
    buildah_storage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    repo_name: str,
) -> dict[str, object]:
    """A monorepo of two apps on one base (and one on scratch), deploy files in git; the base published."""
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(buildah_storage))
    prefix = repo_name.replace("/", "-")
    base = f"{registry.host}/{prefix}/base:1"
    first = publish_base(base, "base 1\n", tmp_path)
    config = (
        f"image: {registry.host}/{prefix}/{{app}}\n"
        f'registries:\n  "{registry.host}": {{insecure: true}}\n'
        "deploy:\n  git: {files: [deploy/prod.yaml], push: false}\n  cooldown: 0s\n"
    )
    root = init_repo(
        tmp_path / "mono",
        {
            "tagtrail.yaml": config,
            "apps/web/Dockerfile": f"ARG BASE={base}\nFROM $BASE AS runtime\nCOPY index.html /srv/\n",
            "apps/web/index.html": "<h1>web</h1>\n",
            "apps/api/Dockerfile": f"FROM {base}\nCOPY api.txt /srv/\n",
            "apps/api/api.txt": "api\n",
            "apps/static/Dockerfile": "FROM scratch\nCOPY s.txt /\n",
            "apps/static/s.txt": "s\n",
            "deploy/prod.yaml": "# the deploy file\n",
        },
    )
    monkeypatch.chdir(root)
    return {"root": root, "registry": registry, "base": base, "first": first, "tmp": tmp_path}


async def _config(registry: RegistryServer, reference: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        return (await client.image_config(ImageRef.parse(reference))).labels


async def _annotations(registry: RegistryServer, reference: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        manifest = await client.manifest(ImageRef.parse(reference))
    return dict(json.loads(manifest.raw).get("annotations", {}))


def build_and_declare(capsys: pytest.CaptureFixture[str], root: Path, *apps: str) -> dict[str, str]:
    """Build and push `apps`, write what was pushed into the deploy file as what runs, commit."""
    code, out, err = run(capsys, "build", *apps, "--push", "--json")
    assert code == 0, out + err
    refs = {r["app"]: f"{r['reference']}@{r['digest']}" for r in json.loads(out)}
    lines = "".join(f"{app}:\n  image: {ref}\n" for app, ref in sorted(refs.items()))
    commit(root, {"deploy/prod.yaml": lines}, "run what was built")
    return refs


def test_build_records_the_base_and_base_images_reports_its_move(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    root, registry, base, first = lab["root"], lab["registry"], lab["base"], lab["first"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    refs = build_and_declare(capsys, root, "web", "api", "static")
    for app in ("web", "api"):
        labels = asyncio.run(_config(registry, refs[app]))
        annotations = asyncio.run(_annotations(registry, refs[app]))
        for recorded in (labels, annotations):
            assert recorded[BASE_NAME] == base
            assert recorded[BASE_DIGEST] == first
    assert BASE_NAME not in asyncio.run(_config(registry, refs["static"]))  # FROM scratch: no base

    code, out, err = run(capsys, "base-images", "--json")
    assert code == 0, err
    rows = {r["app"]: r for r in json.loads(out)}
    assert rows["web"]["moved"] is False
    assert (rows["web"]["base"], rows["web"]["used"], rows["web"]["current"]) == (base, first, first)
    assert rows["web"]["source"] == "annotations"
    assert (rows["static"]["base"], rows["static"]["scratch"], rows["static"]["moved"]) == (None, True, False)

    tmp = lab["tmp"]
    assert isinstance(tmp, Path)
    second = publish_base(str(base), "base 1, with a security fix\n", tmp)
    assert second != first
    code, out, err = run(capsys, "base-images", "web", "api", "--json")
    assert code == 0, err
    rows = {r["app"]: r for r in json.loads(out)}
    assert sorted(rows) == ["api", "web"]
    for app in ("web", "api"):
        assert rows[app]["moved"] is True
        assert (rows[app]["used"], rows[app]["current"]) == (first, second)
        assert rows[app]["since"] is not None  # the new base's created time
    code, out, err = run(capsys, "base-images")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "yes, since " in lines["web"]
    assert lines["static"].endswith("no (FROM scratch)")


def test_for_build_gives_the_workflow_the_base_and_its_build_context(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """What the generated workflow's step writes to $GITHUB_OUTPUT: the build context makes the builder use
    the digest that is recorded, however the tag moves meanwhile."""
    root, base, first = lab["root"], lab["base"], lab["first"]
    assert isinstance(root, Path)
    code, out, err = run(capsys, "base-images", "--for-build", "web")
    assert code == 0, err
    lines = dict(line.split("=", 1) for line in out.strip().splitlines())
    assert lines["name"] == base
    assert lines["digest"] == first
    assert lines["context"] == f"{base}=docker-image://{str(base).rsplit(':', 1)[0]}@{first}"


def test_a_dockerfile_that_cannot_be_read_is_one_line_with_file_and_line(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    root = lab["root"]
    assert isinstance(root, Path)
    commit(root, {"apps/web/Dockerfile": "ARG BASE\nFROM $BASE\n"}, "break web's base")
    code, _, err = run(capsys, "build", "web")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: apps/web/Dockerfile:2: '$BASE' expands to nothing: give the ARG a default or --build-arg"
    ]
    assert "Traceback" not in err


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


async def watch_once(path: Path, watch: BaseWatch, deploy: Deploy | None = None) -> list[AppBase]:
    """One turn of serve's base watch on this project, with a reconciler as serve builds one."""
    config = load_config(path)
    async with RegistryClient(config.registries) as client:
        reconciler = Reconciler(config, path, client)

        async def deploy_now(apps: set[str]) -> object:
            return await reconciler.run(sorted(apps), actor="tagtrail serve", automatic=True)

        return await watch.run_once(reconciler, asyncio.Lock(), deploy or deploy_now)


async def deploy_as_serve(path: Path, watch: BaseWatch) -> Report:
    """A reconcile of every app, as serve runs it: its reconciler knows the apps on a moved base."""
    config = load_config(path)
    async with RegistryClient(config.registries) as client:
        reconciler = Reconciler(config, path, client)
        reconciler.bases_moved = watch.moved
        return await reconciler.run(actor="tagtrail serve", automatic=True)


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
        watch = BaseWatch(metrics, told)
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
    watch = BaseWatch(Metrics(), Told())
    rows = asyncio.run(watch_once(path, watch))
    assert [r.app for r in rows if r.moved] == ["web"]

    deployed = (root / "deploy/prod.yaml").read_text().split("image: ")[1].strip()
    assert deployed != before
    assert deployed.split(":")[-2].split(".")[-1] == before.split(":")[-2].split(".")[-1]  # the same commit
    assert asyncio.run(_config(registry, deployed))[BASE_DIGEST] == second
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
        assert served.metric("tagtrail_base_image_rebuilds", app="web", via="local") == 0.0  # notify only
    finally:
        assert served.stop() == 0


def test_an_image_without_a_record_is_read_from_its_dockerfile_at_its_commit(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """An image built before tagtrail recorded bases (here pushed without labels): base-images names the
    base the Dockerfile had at the image's commit, and says the digest used is not known."""
    root, registry, base = lab["root"], lab["registry"], str(lab["base"])
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    old = commit(root, {"apps/api/Dockerfile": f"FROM {base}\nCOPY api.txt /srv/\n# v1\n"}, "api v1")
    config = load_config(root / "tagtrail.yaml")
    tag = config.tag_scheme.format(branch="main", sha=old, time=datetime.now(UTC))
    with ImagePusher(registry.url) as pusher:
        image = pusher.push_image(f"{config.image_for('api').split('/', 1)[1]}", tag)
    commit(root, {"apps/api/Dockerfile": "FROM scratch\nCOPY api.txt /srv/\n"}, "api moves to scratch")
    running = f"{config.image_for('api')}:{tag}@{image.digest}"
    commit(root, {"deploy/prod.yaml": f"api:\n  image: {running}\n"}, "run the old build")
    code, out, err = run(capsys, "base-images", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["app"], row["base"], row["source"]) == ("api", base, "dockerfile")  # the old commit's FROM
    assert (row["used"], row["moved"]) == (None, None)
    assert row["current"] == lab["first"]
    assert "records no base digest" in row["problem"]


def test_a_multi_platform_build_on_a_multi_platform_base(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """The base is an index: its digest is what the tag points to, and each platform's image records it."""
    root, registry = lab["root"], lab["registry"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    config = load_config(root / "tagtrail.yaml")
    repository = config.image_for("multi-base").split("/", 1)[1]
    with ImagePusher(registry.url) as pusher:
        index = pusher.push_index(repository, "2")
    base = f"{registry.host}/{repository}:2"
    commit(root, {"apps/web/Dockerfile": f"FROM {base}\nCOPY index.html /srv/\n"}, "web on a multi-arch base")
    code, out, err = run(capsys, "build", "web", "--push", "--platform", "linux/amd64,linux/arm64", "--json")
    assert code == 0, out + err
    [web] = json.loads(out)
    for platform in ("amd64", "arm64"):
        labels = asyncio.run(_platform_labels(registry, web["reference"], platform))
        assert (labels[BASE_NAME], labels[BASE_DIGEST]) == (base, index.digest)


async def _platform_labels(registry: RegistryServer, reference: str, architecture: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        config = await client.image_config(ImageRef.parse(reference), Platform("linux", architecture))
    assert config.architecture == architecture
    return config.labels
