"""`tagtrail prune` on GitHub Packages (ghcr.io's deletion path), against a local stand-in of GitHub's REST
API over a real registry (tests/bench/ghpackages.py): the same safety rules, pagination by `Link`, a 404 for
a version already gone, a 403 for a token without delete:packages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.cli import run
from bench.ghpackages import GitHubPackages
from bench.retention import Scenario, make_scenario, prune_beside, pulls_completely, retag
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import load_config
from tagtrail.features.retention.github import GitHubStore
from tagtrail.features.retention.graph import Graph
from tagtrail.features.retention.run import store_for
from tagtrail_demo import ImagePusher, RegistryServer


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def github(own_registry: RegistryServer) -> Iterator[GitHubPackages]:
    api = GitHubPackages(
        own_registry.url,
        own_registry.storage,
        "homelab",
        tokens={"full": {"read:packages", "delete:packages"}, "readonly": {"read:packages"}},
        page_cap=7,
    ).start()
    yield api
    api.stop()


@pytest.fixture
def scenario(
    tmp_path: Path, own_registry: RegistryServer, github: GitHubPackages, monkeypatch: pytest.MonkeyPatch
) -> Scenario:
    with ImagePusher(own_registry.url) as pusher:
        found = make_scenario(tmp_path / "project", own_registry, pusher, "homelab/web")
    config = found.root / "tagtrail.yaml"
    config.write_text(
        config.read_text()
        + f'  github:\n    api_url: "{github.url}"\n    registries: ["{own_registry.host}"]\n'
    )
    monkeypatch.chdir(found.root)
    monkeypatch.setenv("GITHUB_TOKEN", "full")
    return found


def tags_of(scenario: Scenario) -> set[str]:
    with ImagePusher(scenario.registry.url) as pusher:
        return set(pusher.list_tags(scenario.repo))


def test_github_packages_plan_is_the_same_and_apply_deletes_versions_safely(
    capsys: pytest.CaptureFixture[str], scenario: Scenario, github: GitHubPackages, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "prune", "--json")
    assert code == 0, err
    [item] = json.loads(out)["apps"]
    assert item["store"] == "github-packages"
    found = {t["tag"]: t["why"] for t in item["tags"]}
    assert {t: found[t] for t in scenario.kept} == scenario.kept
    assert {t: found[t] for t in scenario.deleted} == scenario.deleted
    pages = [r for r in github.requests if r[0] == "GET"]
    assert len(pages) > 1  # every page, by the Link header
    before = {v["name"] for v in github.versions(scenario.repo) or []}

    code, out, err = run(capsys, "prune", "--apply", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert "GitHub frees the space" in report["reclaim"][0]
    assert tags_of(scenario) == set(scenario.kept)
    for n, tag in enumerate(sorted(scenario.kept)):
        pulled = pulls_completely(scenario.registry, scenario.repo, tag, tmp_path / f"pull{n}")
        assert pulled.returncode == 0, f"{tag}: {pulled.stderr}"
    after = {v["name"] for v in github.versions(scenario.repo) or []}
    deleted = {
        d for x in report["apps"][0]["deletions"] for d in [x["digest"], *x["children"], *x["referrers"]]
    }
    assert before - after == deleted  # the untagged children and referrers of deleted images too
    assert all(r[2] == 204 for r in github.requests if r[0] == "DELETE")


def test_a_token_without_delete_packages_gets_one_line_and_deletes_nothing(
    capsys: pytest.CaptureFixture[str], scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "readonly")
    before = tags_of(scenario)
    code, _, err = run(capsys, "prune", "--apply")
    assert code == 1
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert "HTTP 403" in line
    assert "needs delete:packages" in line
    assert tags_of(scenario) == before


def test_no_token_is_one_line_before_any_request(
    capsys: pytest.CaptureFixture[str],
    scenario: Scenario,
    github: GitHubPackages,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    code, _, err = run(capsys, "prune")
    assert code == 4
    assert "needs a token with delete:packages in $GITHUB_TOKEN" in err
    assert github.requests == []


def test_a_version_deleted_meanwhile_is_not_an_error(scenario: Scenario, github: GitHubPackages) -> None:
    """GitHub answers 404 for a version that is not there (another cleanup got there first, or a re-run
    after an interruption): what was wanted is done."""
    config = load_config(scenario.root / "tagtrail.yaml")
    victim = next(i for t, i in scenario.images.items() if t.endswith("4040404"))

    async def main() -> None:
        async with RegistryClient(config.registries) as client:
            store = store_for(config, client, ImageRef.parse(scenario.image))
            assert isinstance(store, GitHubStore)
            await store.tags()
            httpx.delete(f"{scenario.registry.url}/v2/{scenario.repo}/manifests/{victim.digest}")
            await store.delete(victim.digest)

    asyncio.run(main())
    assert [r[2] for r in github.requests if r[0] == "DELETE"] == [404]


def test_a_build_tag_moved_while_the_deletions_run_blocks_its_deletion(
    scenario: Scenario, github: GitHubPackages, tmp_path: Path
) -> None:
    """The version list names every tag's digest at each re-read: even a kept build tag moved onto a build
    about to go, between two deletions, is seen."""
    moved = next(t for t, why in scenario.kept.items() if why == "newest" and t.startswith("feature-login"))
    during: list[str] = []

    def person(graph: Graph) -> Callable[[], object]:
        during.append([d.digest for d in graph.deletions if d.tags and d.why != "with-subject"][-1])
        return lambda: retag(scenario, moved, during[0])

    item = prune_beside(scenario, person)
    assert during[0] in [d.digest for d, _ in item.blocked]
    pulled = pulls_completely(scenario.registry, scenario.repo, moved, tmp_path / "pulled")
    assert pulled.returncode == 0, pulled.stderr
