"""`tagtrail prune` against the real registry: what is kept still pulls completely after the registry's
garbage collection, what is deleted is gone, and the bytes freed are the bytes the storage lost."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.cli import run
from bench.faultproxy import Fault, FaultProxy
from bench.git import Remote, commit, git
from bench.retention import (
    Scenario,
    blob_bytes,
    build_tag,
    make_scenario,
    prune_beside,
    pulls_completely,
    retag,
)
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import RegistryConfig, load_config
from tagtrail.features.retention.facts import protected
from tagtrail.features.retention.graph import Graph
from tagtrail.features.retention.prune import PruneReport, apply, plan
from tagtrail.features.retention.run import store_for
from tagtrail.features.retention.stores import DistributionStore
from tagtrail.reconcile import Reconciler
from tagtrail.targets.factory import open_project
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry of this test alone: its garbage collection must not touch another test's images."""
    with RegistryServer(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def scenario(tmp_path: Path, own_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    with ImagePusher(own_registry.url) as pusher:
        found = make_scenario(tmp_path / "project", own_registry, pusher, "homelab/web")
    monkeypatch.chdir(found.root)
    return found


def tags_of(scenario: Scenario) -> set[str]:
    with ImagePusher(scenario.registry.url) as pusher:
        return set(pusher.list_tags(scenario.repo))


def verdicts(out: str) -> dict[str, str]:
    [item] = json.loads(out)["apps"]
    return {t["tag"]: t["why"] for t in item["tags"]}


def test_the_plan_keeps_and_deletes_each_tag_for_its_reason_and_deletes_nothing(
    capsys: pytest.CaptureFixture[str], scenario: Scenario
) -> None:
    before = tags_of(scenario)
    code, out, err = run(capsys, "prune", "--json")
    assert code == 0, err
    found = verdicts(out)
    assert {t: found[t] for t in scenario.kept} == scenario.kept
    assert {t: found[t] for t in scenario.deleted} == scenario.deleted
    assert set(found) == before
    assert json.loads(out)["freed_bytes"] > 0
    assert tags_of(scenario) == before  # a dry run
    code, out, _ = run(capsys, "prune")
    assert "would free" in out
    assert "dry run: nothing was deleted" in out


def test_apply_then_garbage_collection_keeps_every_kept_image_whole_and_frees_what_it_said(
    capsys: pytest.CaptureFixture[str], scenario: Scenario, tmp_path: Path
) -> None:
    stored = blob_bytes(scenario.registry)
    code, out, err = run(capsys, "prune", "--apply", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["applied"]
    assert "garbage-collect" in report["reclaim"][0]
    assert "not --delete-untagged" in report["reclaim"][0]
    scenario.registry.garbage_collect()
    left = tags_of(scenario)
    assert left == set(scenario.kept)  # every deleted tag is gone, every kept one is there
    for n, tag in enumerate(sorted(scenario.kept)):
        pulled = pulls_completely(scenario.registry, scenario.repo, tag, tmp_path / f"pull{n}")
        assert pulled.returncode == 0, f"{tag}: {pulled.stderr}"
    assert stored - blob_bytes(scenario.registry) == report["freed_bytes"]
    # every deletion is in the decision log with the rule that allowed it
    log = Path.home() / ".local/state/tagtrail/decisions.sqlite"
    with sqlite3.connect(log) as db:
        rows = db.execute("SELECT action, reason, target FROM decisions WHERE action = 'delete'").fetchall()
    [item] = report["apps"]
    assert len(rows) == len(item["deletions"])
    assert {r[1] for r in rows} <= {"old-build", "old-other-branch", "old-dirty", "with-subject"}
    # a second run finds nothing more to delete
    code, out, _ = run(capsys, "prune", "--apply", "--json")
    assert code == 0
    assert json.loads(out)["apps"][0]["deletions"] == []


def test_builds_pushed_while_prune_runs_are_never_deleted(scenario: Scenario, tmp_path: Path) -> None:
    """Between the plan and each deletion: a new tag on a digest about to go, and a new index that reuses
    a platform image about to go (buildx does, for an unchanged platform); both block those deletions."""
    config_path = scenario.root / "tagtrail.yaml"
    config = load_config(config_path)
    old_index = next(i for t, i in scenario.images.items() if t.endswith("9999999"))
    old_dirty = next(i for t, i in scenario.images.items() if t.endswith("d3d3d3d-dirty"))

    async def main() -> tuple[list[str], list[str]]:
        async with RegistryClient(config.registries) as client:
            reconciler = Reconciler(open_project(config, config_path, client))
            keep = await protected(config, reconciler.project.target, ["web"])
            ref = ImageRef.parse(scenario.image)
            report = await plan(config, {"web": store_for(config, client, ref)}, keep, reconciler.clock())
            with ImagePusher(scenario.registry.url) as pusher:
                pusher.tag(old_dirty, "hotfix-retagged")
                children = json.loads(
                    pusher.get_manifest(scenario.repo, old_index.digest, old_index.media_type)
                )
                reuse = json.dumps({**children, "manifests": children["manifests"][:1]}).encode()
                pusher.put_manifest(scenario.repo, "new-index", reuse, old_index.media_type)
                # a stream of ordinary new builds, pushed while the deletions run
                pushing = asyncio.to_thread(
                    lambda: [pusher.push_image(scenario.repo, f"main-new-{n}") for n in range(5)]
                )
                await asyncio.gather(apply(report, reconciler.project.log, actor="test"), pushing)
            [item] = report.plans
            return [d.digest for d in item.deleted], [d.digest for d, _ in item.blocked]

    deleted, blocked = asyncio.run(main())
    assert old_dirty.digest in blocked
    assert old_index.digest in blocked
    assert deleted  # the rest went
    left = tags_of(scenario)
    assert {"hotfix-retagged", "new-index", *(f"main-new-{n}" for n in range(5))} <= left
    for n, tag in enumerate(("hotfix-retagged", "new-index", "main-new-4")):
        pulled = pulls_completely(scenario.registry, scenario.repo, tag, tmp_path / f"p{n}")
        assert pulled.returncode == 0, pulled.stderr


class NoDeleteRegistry(RegistryServer):
    def _config(self) -> str:
        return super()._config().replace("  delete:\n    enabled: true\n", "  delete:\n    enabled: false\n")


def test_a_registry_that_refuses_delete_gets_one_line_and_nothing_more_is_tried(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with NoDeleteRegistry(tmp_path / "registry") as server, ImagePusher(server.url) as pusher:
        s = make_scenario(tmp_path / "project", server, pusher, "homelab/web")
        monkeypatch.chdir(s.root)
        before = set(pusher.list_tags(s.repo))
        code, _out, err = run(capsys, "prune", "--apply")
        assert code == 1
        [line] = [x for x in err.splitlines() if x.startswith("error:")]
        assert "deleting is disabled" in line
        assert "nothing more was deleted" in line
        assert set(pusher.list_tags(s.repo)) == before


def _plan_and_apply_through(proxy: FaultProxy, scenario: Scenario) -> PruneReport:
    config_path = scenario.root / "tagtrail.yaml"
    config = load_config(config_path)

    async def main() -> PruneReport:
        async with RegistryClient({proxy.host: RegistryConfig(insecure=True)}, retries=0) as client:
            reconciler = Reconciler(open_project(config, config_path, client))
            keep = await protected(config, reconciler.project.target, ["web"])
            store = DistributionStore(client, ImageRef.parse(f"{proxy.host}/{scenario.repo}"))
            report = await plan(config, {"web": store}, keep, reconciler.clock())
            return await apply(report, reconciler.project.log, actor="test")

    try:
        return asyncio.run(main())
    finally:
        proxy.stop()


def test_a_tag_list_that_cannot_be_read_deletes_nothing_there(scenario: Scenario) -> None:
    proxy = FaultProxy(scenario.registry.url).start()
    proxy.faults.append(Fault("truncate", path="/tags/list"))
    report = _plan_and_apply_through(proxy, scenario)
    [item] = report.plans
    assert item.problem is not None
    assert "nothing is deleted in this repository" in item.problem
    assert item.deleted == []
    assert not [r for r in proxy.requests if r[0] == "DELETE"]


def test_a_kept_index_that_cannot_be_read_deletes_nothing_in_its_repository(scenario: Scenario) -> None:
    """A kept multi-arch image whose index answers 404 at plan time: its platform images, which an old
    tag also names, would otherwise look unlisted and go with that tag, breaking the kept image."""
    index = next(
        i for t, i in scenario.images.items() if scenario.kept.get(t) == "newest" and "index" in i.media_type
    )
    with ImagePusher(scenario.registry.url) as pusher:
        listed = json.loads(pusher.get_manifest(scenario.repo, index.digest, index.media_type))
        child = listed["manifests"][0]
        old = build_tag("main", timedelta(days=40), "c0c0c0c", datetime.now(UTC))
        pusher.tag(PushedImage(scenario.repo, "", child["digest"], child["mediaType"], index.created), old)
    proxy = FaultProxy(scenario.registry.url).start()
    proxy.faults.append(Fault("status", path=f"/manifests/{index.digest}$", status=404))
    report = _plan_and_apply_through(proxy, scenario)
    [item] = report.plans
    assert item.problem is not None
    assert index.digest[:19] in item.problem
    assert "nothing is deleted in this repository" in item.problem
    assert item.deleted == []
    assert not [r for r in proxy.requests if r[0] == "DELETE"]
    assert old in tags_of(scenario)


def test_a_kept_tag_moved_onto_a_doomed_build_blocks_its_deletion(scenario: Scenario, tmp_path: Path) -> None:
    """A person retags during prune (a rollback by retagging): a kept build tag moved before the deletions
    start, and `latest` moved while they run; neither build they now name is deleted."""
    moved = next(t for t, why in scenario.kept.items() if why == "newest" and t.startswith("feature-login"))
    targets: list[str] = []

    def person(graph: Graph) -> Callable[[], object]:
        doomed = [d.digest for d in graph.deletions if d.tags and d.why != "with-subject"]
        before, during = doomed[-1], doomed[-2]
        assert graph.deletions[0].digest not in (before, during)
        targets.extend((before, during))
        retag(scenario, moved, before)
        return lambda: retag(scenario, "latest", during)

    item = prune_beside(scenario, person)
    blocked = [d.digest for d, _ in item.blocked]
    assert set(targets) <= set(blocked)
    assert not set(targets) & {d.digest for d in item.deleted}
    assert item.deleted  # the rest went
    for n, tag in enumerate((moved, "latest")):
        pulled = pulls_completely(scenario.registry, scenario.repo, tag, tmp_path / f"p{n}")
        assert pulled.returncode == 0, f"{tag}: {pulled.stderr}"


def test_pins_and_deploys_on_the_deploy_branch_head_are_kept_from_a_checkout_behind_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    own_registry: RegistryServer,
    file_remote: Remote,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone else (or tagtrail serve) pinned web and deployed an old build on the deploy branch; this
    checkout has not pulled it. What the deploy branch's head pins and runs is kept all the same."""
    with ImagePusher(own_registry.url) as pusher:
        s = make_scenario(tmp_path / "project", own_registry, pusher, "homelab/web", pin=False)
    git(s.root, "remote", "add", "origin", file_remote.url)
    git(s.root, "push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", file_remote.url, "other")
    pinned = next(t for t in s.images if t.endswith("5555555"))
    first = next(i for t, i in s.images.items() if t.endswith("8888888"))
    config = (tmp_path / "other/tagtrail.yaml").read_text()
    deploy = f"spec:\n  containers:\n    - name: web\n      image: {s.image}:{first.tag}@{first.digest}\n"
    pins = config.replace("  git:\n", f"  pins:\n    web: {pinned}\n  git:\n")
    commit(tmp_path / "other", {"tagtrail.yaml": pins, "deploy/web.yaml": deploy}, "pin web, deploy")
    git(tmp_path / "other", "push", "-q", "origin", "main")
    monkeypatch.chdir(s.root)
    code, out, err = run(capsys, "prune", "--json")
    assert code == 0, err
    found = verdicts(out)
    assert (found[pinned], found[first.tag]) == ("pinned", "deployed")
    assert git(s.root, "rev-parse", "HEAD") != git(s.root, "rev-parse", "origin/main")  # left as it was


def test_a_build_kept_by_digest_alone_keeps_the_platform_images_it_lists(scenario: Scenario) -> None:
    """A ReplicaSet or deploy file naming an index by digest only (`kubectl set image web=…@sha256:…`),
    no tag on it: the platform images it lists stay, though the old index that also lists them goes."""
    config_path = scenario.root / "tagtrail.yaml"
    config = load_config(config_path)
    old = next(i for t, i in scenario.images.items() if t.endswith("9999999"))
    with ImagePusher(scenario.registry.url) as pusher:
        listed = json.loads(pusher.get_manifest(scenario.repo, old.digest, old.media_type))
        body = json.dumps({**listed, "annotations": {"copy": "by digest"}}).encode()
        alone = pusher.put_manifest(
            scenario.repo, f"sha256:{hashlib.sha256(body).hexdigest()}", body, old.media_type
        )
    children = {c["digest"] for c in listed["manifests"]}

    async def main() -> PruneReport:
        async with RegistryClient(config.registries) as client:
            reconciler = Reconciler(open_project(config, config_path, client))
            keep = await protected(config, reconciler.project.target, ["web"])
            keep["web"].digests.add(alone)
            store = store_for(config, client, ImageRef.parse(scenario.image))
            return await plan(config, {"web": store}, keep, reconciler.clock())

    [item] = asyncio.run(main()).plans
    assert item.graph is not None
    [gone] = [d for d in item.graph.deletions if d.digest == old.digest]
    assert not children & set(gone.digests)
    assert children <= item.graph.kept_digests
