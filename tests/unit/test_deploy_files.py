"""deploy.git.files as people write them (issue 24, items 21 and 22), on a real git repository and no
registry: a path or glob that matches no file is one line naming tagtrail.yaml's line, at `config check` and
at every command that reads the deploy files (serve says it as a failed reconcile); globs resolve in a stable
order; and a plan that places no app says which apps and where it looked, and fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import init_repo
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.config import load_config
from tagtrail.config.deployfiles import deploy_files, deploy_files_among
from tagtrail.errors import ConfigError
from tagtrail.serve.controller import Controller
from tagtrail.targets.factory import open_project

IMAGE = "registry.test/acme/{app}"
TYPO = (
    f"image: {IMAGE}\n"
    "deploy:\n"
    "  git:\n"
    "    push: false\n"
    "    files:\n"
    "      - deploy/web.yaml\n"
    "      - deploy/nosuch.yaml\n"
)
AT_LINE = "tagtrail.yaml:7:9: deploy.git.files[1]: 'deploy/nosuch.yaml' is not a file in"


def init_repo_tree(root: Path) -> list[str]:
    return GitRepo(root).run("ls-tree", "-r", "--name-only", "-z", "HEAD").split("\0")


def _project(root: Path, config: str, files: dict[str, str]) -> Path:
    init_repo(root, {"tagtrail.yaml": config, "apps/web/Dockerfile": "FROM scratch\n", **files})
    return root


@pytest.fixture
def typo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = _project(tmp_path / "site", TYPO, {"deploy/web.yaml": "web:\n  image: registry.test/acme/web:x\n"})
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize(
    "command", [("config", "check"), ("plan",), ("deploy",), ("status",), ("history", "web"), ("report",)]
)
def test_a_deploy_file_that_is_not_there_is_one_line_naming_its_line(
    capsys: pytest.CaptureFixture[str], typo: Path, command: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *command)
    assert code == 1, out + err
    assert err.startswith(f"error: {AT_LINE}") or err.startswith(AT_LINE), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_serve_reports_it_as_a_failed_reconcile_with_the_line(typo: Path) -> None:
    controller = Controller(typo / "tagtrail.yaml")

    async def once() -> None:
        await controller.reconcile()
        await controller.reconciler.project.aclose()
        await controller.client.aclose()

    asyncio.run(once())
    assert (controller.status.last_error or "").startswith(AT_LINE), controller.status.last_error


def test_globs_resolve_in_a_stable_order_and_each_file_once(tmp_path: Path) -> None:
    config_text = (
        f"image: {IMAGE}\ndeploy:\n  git:\n    push: false\n"
        "    files: ['deploy/*.yaml', 'deploy/**/extra.yaml', deploy/b.yaml]\n"
    )
    root = _project(
        tmp_path / "site",
        config_text,
        {
            "deploy/b.yaml": "api:\n  image: registry.test/acme/api:x\n",
            "deploy/a.yaml": "web:\n  image: registry.test/acme/web:x\n",
            "deploy/sub/extra.yaml": "worker:\n  image: registry.test/acme/worker:x\n",
            "deploy/sub/other.yaml": "db:\n  image: registry.test/acme/db:x\n",  # * stays within a folder
        },
    )
    config = load_config(root / "tagtrail.yaml")
    assert deploy_files(config, root) == ["deploy/a.yaml", "deploy/b.yaml", "deploy/sub/extra.yaml"]
    target = open_project(config, root / "tagtrail.yaml", client=None).target
    assert sorted(asyncio.run(target.declared()).states) == ["api", "web", "worker"]
    # retention reads the deploy branch's head, a commit's tree rather than a work tree: the same files
    tree = init_repo_tree(root)
    assert deploy_files_among(config, tree, "HEAD") == [
        "deploy/a.yaml",
        "deploy/b.yaml",
        "deploy/sub/extra.yaml",
    ]
    with pytest.raises(ConfigError, match=r"'deploy/b\.yaml' is not a file in HEAD"):
        deploy_files_among(config, [p for p in tree if p != "deploy/b.yaml"], "HEAD")


def test_a_glob_that_matches_nothing_names_its_line(tmp_path: Path) -> None:
    config_text = f"image: {IMAGE}\ndeploy:\n  git:\n    files: ['deploy/*.yml']\n"
    root = _project(tmp_path / "site", config_text, {"deploy/a.yaml": "web:\n  image: x\n"})
    with pytest.raises(ConfigError) as caught:
        deploy_files(load_config(root / "tagtrail.yaml"), root)
    [problem] = caught.value.problems
    assert (problem.line, problem.column, problem.field) == (4, 13, "deploy.git.files[0]")
    assert "'deploy/*.yml' matches no file" in problem.message


@pytest.mark.parametrize("command", [("plan",), ("plan", "--json"), ("deploy",)])
def test_a_plan_that_places_no_app_says_which_and_where_it_looked_and_fails(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    config_text = f"image: {IMAGE}\ndeploy:\n  git:\n    push: false\n    files: ['deploy/*.yaml']\n"
    files = {
        "deploy/a.yaml": "proxy:\n  image: nginx:1.25\n",  # a third-party image only
        "deploy/b.yaml": "web:\n  image: ghcr.io/someone/else/web:1\n",
        "apps/api/Dockerfile": "FROM scratch\n",
    }
    monkeypatch.chdir(_project(tmp_path / "site", config_text, files))
    code, out, err = run(capsys, *command)
    assert code == 1, out + err
    line = " ".join(err.split())
    assert "not one app has a reference in deploy/a.yaml, deploy/b.yaml" in line, err
    assert "api, web have none" in line, err
    assert "registry.test/acme/api:TAG" in line, err


@pytest.mark.parametrize("entry", ["deploy/*.yaml", "deploy/web.yaml", "web.yaml"])
def test_a_deploy_file_through_a_link_out_of_the_repository_is_refused(tmp_path: Path, entry: str) -> None:
    """deploy.git.files refuses `..` and absolute paths (who pushes to the deploy branch writes tagtrail.yaml),
    but a link committed in the repository led there all the same: the files of a folder outside were read
    and written as deploy files."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "web.yaml").write_text("web:\n  image: registry.test/acme/web:x\n")
    config_text = f"image: {IMAGE}\ndeploy:\n  git:\n    files: ['{entry}']\n"
    root = _project(tmp_path / "site", config_text, {})
    (root / "deploy").symlink_to(outside)
    (root / "web.yaml").symlink_to(outside / "web.yaml")
    with pytest.raises(ConfigError, match="out of the repository"):
        deploy_files(load_config(root / "tagtrail.yaml"), root)
