"""`tagtrail apps` and `apps --changed` in real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import commit, git, init_repo
from tagtrail.adapters.apps import CommitNotHere, discover, discover_named, glob_match, of_commit
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.config import load_config

CONFIG = """\
image: ghcr.io/acme/homelab/{app}
apps:
  root: apps
  exclude: [shared]
  inputs:
    backup-nas: ["apps/shared/**", "tools/backup-*.sh"]
deploy:
  git:
    files: [pulumi/Pulumi.prod.yaml]
"""

FILES = {
    "tagtrail.yaml": CONFIG,
    "apps/web/Dockerfile": "FROM scratch\nCOPY index.html /\n",
    "apps/web/index.html": "<h1>web</h1>\n",
    "apps/worker/Dockerfile": "FROM scratch\nCOPY worker.py /\n",
    "apps/worker/worker.py": "print(1)\n",
    "apps/backup-nas/Containerfile": "FROM scratch\nCOPY backup.sh /\n",
    "apps/backup-nas/backup.sh": "echo\n",
    "apps/shared/lib.sh": "# shared\n",
    "apps/docs/README.md": "not an app: no Dockerfile\n",
    "tools/backup-helper.sh": "echo\n",
    "pulumi/Pulumi.prod.yaml": "config: {}\n",
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = init_repo(tmp_path / "homelab", FILES)
    monkeypatch.chdir(root)
    return root


def changed(capsys: pytest.CaptureFixture[str], base: str, *extra: str) -> list[str]:
    code, out, err = run(capsys, "apps", "--changed", base, "--json", *extra)
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"include"}
    return [entry["app"] for entry in data["include"]]


def test_apps_are_found_by_their_dockerfile(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, out, _ = run(capsys, "apps", "--json")
    assert code == 0
    assert json.loads(out)["include"] == [
        {
            "app": "backup-nas",
            "context": "apps/backup-nas",
            "dockerfile": "apps/backup-nas/Containerfile",
            "image": "ghcr.io/acme/homelab/backup-nas",
            "inputs": ["apps/shared/**", "tools/backup-*.sh"],
        },
        {
            "app": "web",
            "context": "apps/web",
            "dockerfile": "apps/web/Dockerfile",
            "image": "ghcr.io/acme/homelab/web",
            "inputs": [],
        },
        {
            "app": "worker",
            "context": "apps/worker",
            "dockerfile": "apps/worker/Dockerfile",
            "image": "ghcr.io/acme/homelab/worker",
            "inputs": [],
        },
    ]
    code, out, _ = run(capsys, "apps")
    assert [line.split()[0] for line in out.splitlines()] == ["APP", "backup-nas", "web", "worker"]


def test_apps_looked_up_by_name_are_those_discovery_finds(repo: Path) -> None:
    """A webhook's app is looked up in its own folder (`discover_named`), found as the full listing finds it;
    an excluded folder, one without a Dockerfile and a name that is no app are not apps."""
    config = load_config(repo / "tagtrail.yaml")
    every = {app.name: app for app in discover(repo, config)}
    asked = ["worker", "backup-nas", "shared", "docs", "nothing", "../apps/web"]
    assert discover_named(repo, config, asked) == {n: every[n] for n in ("worker", "backup-nas")}
    # a root commit builds every app
    root = GitRepo(repo)
    assert of_commit(root, config, root.head_sha()) == list(every.values())
    with pytest.raises(CommitNotHere):  # not fetched yet: not "every app", as a root commit is
        of_commit(root, config, "0123456")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"apps/web/index.html": "<h1>new</h1>\n"}, ["web"]),
        ({"apps/web/Dockerfile": "FROM scratch\n"}, ["web"]),
        ({"apps/shared/lib.sh": "# changed\n"}, ["backup-nas"]),  # copied into backup-nas at build time
        ({"tools/backup-helper.sh": "echo 2\n"}, ["backup-nas"]),
        ({"apps/worker/worker.py": "print(2)\n", "apps/web/x.css": "a{}\n"}, ["web", "worker"]),
        ({"pulumi/Pulumi.prod.yaml": "config: {a: 1}\n"}, []),  # a deploy commit builds nothing
        ({"README.md": "docs\n"}, []),
        ({"tagtrail.yaml": CONFIG + "  pins: {web: main.20251014-051038.185c95c}\n"}, []),  # deploy part only
        ({"tagtrail.yaml": CONFIG.replace("homelab/{app}", "lab/{app}")}, ["backup-nas", "web", "worker"]),
        ({"tagtrail.yaml": 'scheme: "{{branch}}-{{sha}}"\n' + CONFIG}, ["backup-nas", "web", "worker"]),
    ],
)
def test_changed_apps(
    capsys: pytest.CaptureFixture[str], repo: Path, files: dict[str, str], expected: list[str]
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    sha = commit(repo, files, "change")
    assert changed(capsys, base) == expected
    # what a webhook's commit waits for: the same, looked up in the folders the commit touched
    config = load_config(repo / "tagtrail.yaml")
    assert [app.name for app in of_commit(GitRepo(repo), config, sha)] == expected


def test_an_empty_change_prints_an_empty_matrix(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    code, out, _ = run(capsys, "apps", "--changed", head, "--json")
    assert (code, json.loads(out)) == (0, {"include": []})


def test_a_deleted_app_is_not_listed_and_a_renamed_one_is(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "rm", "-q", "-r", "apps/worker")
    git(repo, "mv", "apps/web", "apps/site")
    git(repo, "commit", "-q", "-m", "remove worker, rename web")
    assert changed(capsys, base) == ["site"]


@pytest.mark.parametrize("base", ["0000000000000000000000000000000000000000", "deadbeef" * 5, "no-such-rev"])
def test_an_unknown_base_builds_every_app(capsys: pytest.CaptureFixture[str], repo: Path, base: str) -> None:
    assert changed(capsys, base) == ["backup-nas", "web", "worker"]


def test_a_force_pushed_base_builds_every_app(
    capsys: pytest.CaptureFixture[str], repo: Path, file_remote: object, tmp_path: Path
) -> None:
    from bench.git import Remote

    assert isinstance(file_remote, Remote)
    git(repo, "remote", "add", "origin", file_remote.url)
    commit(repo, {"apps/web/index.html": "<h1>v2</h1>\n"}, "web v2")
    git(repo, "push", "-q", "origin", "main")
    old_head = git(repo, "rev-parse", "HEAD")
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # rewrite history, as a force-push does
    commit(repo, {"apps/worker/worker.py": "print(3)\n"}, "worker v3")
    git(repo, "push", "-q", "--force", "origin", "main")
    clone = tmp_path / "ci-checkout"
    git(tmp_path, "clone", "-q", file_remote.url, clone.name)  # a fresh checkout never saw the old head
    code, out, err = run(capsys, "-c", str(clone / "tagtrail.yaml"), "apps", "--changed", old_head, "--json")
    assert code == 0, err
    assert [e["app"] for e in json.loads(out)["include"]] == ["backup-nas", "web", "worker"]


def test_head_can_be_named(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    middle = commit(repo, {"apps/web/index.html": "<h1>1</h1>\n"}, "web")
    commit(repo, {"apps/worker/worker.py": "print(9)\n"}, "worker")
    assert changed(capsys, base, "--head", middle) == ["web"]


def test_apps_problems_are_one_line(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (repo / "apps" / "BadName").mkdir()
    (repo / "apps" / "BadName" / "Dockerfile").write_text("FROM scratch\n")
    code, _, err = run(capsys, "apps")
    assert code == 1
    assert "apps/BadName: 'BadName' cannot name an image" in err
    (repo / "apps" / "BadName" / "Dockerfile").unlink()
    (repo / "tagtrail.yaml").write_text(CONFIG.replace("backup-nas:", "backup-naz:"))
    code, _, err = run(capsys, "apps")
    assert "apps.inputs names 'backup-naz', which is not an app" in err


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("apps/shared/**", "apps/shared/lib.sh", True),
        ("apps/shared/**", "apps/shared/deep/er/x.py", True),
        ("apps/shared/**", "apps/sharedx/lib.sh", False),
        ("tools/*.sh", "tools/a.sh", True),
        ("tools/*.sh", "tools/sub/a.sh", False),
        ("**/*.proto", "a/b/c.proto", True),
        ("**/*.proto", "c.proto", True),
        ("lib/?.py", "lib/a.py", True),
        ("lib/?.py", "lib/ab.py", False),
    ],
)
def test_glob_match(pattern: str, path: str, matches: bool) -> None:
    assert glob_match(pattern, path) is matches


def test_one_app_is_found_as_discover_finds_it(repo: Path) -> None:
    """A base question about one app reads that app's folder alone, and finds what discover finds."""
    config = load_config(repo / "tagtrail.yaml")
    found = {app.name: app for app in discover(repo, config)}
    for name in ["web", "worker", "backup-nas", "shared", "docs", "missing", "..", "web/..", "Web"]:
        assert discover_named(repo, config, [name]).get(name) == found.get(name), name
