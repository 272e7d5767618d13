"""`tagtrail init` on a hostile repository: files linked to /dev/zero or out of the repository, YAML alias
bombs and deep nesting in workflows and deploy files. Each is skipped with one line saying why, the rest of
the repository is read as usual, and nothing hangs or eats memory: init runs in a child process whose address
space is capped and whose run time is bounded (a hang or a MemoryError fails the test, not the machine)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bench.git import commit, git, init_repo
from tagtrail.features.init import survey

LIMIT = 1024 * 1024 * 1024  # the child's address space: the interpreter and its imports use ~300 MiB
IMAGE = "ghcr.io/acme/shop/web:main.20251014-051038.185c95c"
WORKFLOW = """\
jobs:
  build:
    strategy:
      matrix:
        app: [web]
    steps:
      - uses: docker/metadata-action@v5
        with:
          images: ghcr.io/acme/shop/${{ matrix.app }}
          tags: type=raw,value={{branch}}.{{date 'YYYYMMDD-HHmmss'}}.{{sha}}
"""
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
    for p, c in zip("abcdefghijklmnop", "bcdefghijklmnopq", strict=True)
)
DEEP = "a:\n" + "".join(" " * i + "- \n" for i in range(1, 300))


def cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def repository(tmp_path: Path) -> Path:
    """A small repository init reads right: one app, its workflow, one deploy file naming its image."""
    root = init_repo(
        tmp_path / "shop",
        {
            "apps/web/Dockerfile": "FROM scratch\n",
            ".github/workflows/build.yml": WORKFLOW,
            "deploy/web.yaml": f"image: {IMAGE}\n",
        },
    )
    git(root, "remote", "add", "origin", "https://github.com/acme/shop.git")
    return root


def link(root: Path, path: str, target: str | Path) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).symlink_to(target)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"link {path}")


def init(root: Path, args: tuple[str, ...] = ("--dry-run",)) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tagtrail", "init", *args],
        cwd=root,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=cap,
        capture_output=True,
        text=True,
        timeout=60,  # today's alias bomb ran for minutes: a hang fails here
        check=False,
    )


def outside(tmp_path: Path) -> Path:
    """A YAML file out of the repository that names the app's image, as a deploy file would."""
    path = tmp_path / "elsewhere" / "prod.yaml"
    path.parent.mkdir()
    path.write_text(f"image: {IMAGE.replace('web:', 'web:stolen-')}\n")
    return path


HOSTILE = {
    "workflow linked to /dev/zero": (
        ".github/workflows/zero.yml",
        "/dev/zero",
        "a link out of the repository",
    ),
    "deploy file linked to /dev/zero": ("deploy/zero.yaml", "/dev/zero", "a link out of the repository"),
    "Dockerfile linked to /dev/zero": ("apps/api/Dockerfile", "/dev/zero", "a link out of the repository"),
    "Makefile linked to /dev/zero": ("apps/web/Makefile", "/dev/zero", "a link out of the repository"),
    "deploy file linked out of the repository": ("deploy/prod.yaml", None, "a link out of the repository"),
    "deploy file linked to itself": ("deploy/loop.yaml", "loop.yaml", "a loop of links"),
    "workflow linked to a folder": (".github/workflows/dir.yml", ".", "not a regular file"),
    "workflow alias bomb": (".github/workflows/bomb.yml", LAUGHS, "YAML nesting or aliases over the limit"),
    "deploy file alias bomb": ("deploy/bomb.yaml", LAUGHS, "YAML nesting or aliases over the limit"),
    "deploy file nested too deep": ("deploy/deep.yaml", DEEP, "YAML nesting or aliases over the limit"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_file_is_skipped_in_one_line_and_the_rest_is_read(case: str, tmp_path: Path) -> None:
    path, content, why = HOSTILE[case]
    root = repository(tmp_path)
    if content is None:
        link(root, path, os.path.relpath(outside(tmp_path), (root / path).parent))
    elif content.startswith("/") or "\n" not in content:
        link(root, path, content)
    else:
        commit(root, {path: content}, f"add {path}")

    result = init(root)

    assert result.returncode == 0, result.stderr[-3000:]
    said = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(said) == 1
    assert said[0].startswith(f"skipped {path}: {why}")
    assert "Traceback" not in result.stderr
    # the rest of the repository, as without the hostile file: the workflow's image, the real deploy file
    assert 'image: "ghcr.io/acme/shop/{app}"\n' in result.stdout
    assert "      - deploy/web.yaml\n" in result.stdout
    assert path not in result.stdout
    assert "stolen" not in result.stdout + result.stderr


def test_a_large_deploy_file_is_skipped_with_its_size_limit(tmp_path: Path) -> None:
    root = repository(tmp_path)
    commit(root, {"deploy/huge.yaml": f"image: {IMAGE}\n" + "# padding\n" * 300_000}, "a huge file")
    result = init(root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped deploy/huge.yaml: larger than 2048 KiB" in result.stderr.splitlines()
    assert "deploy/huge.yaml" not in result.stdout


def test_a_link_inside_the_repository_is_read(tmp_path: Path) -> None:
    """Only links out of the repository are refused: a file linked to another of its own files is read."""
    root = repository(tmp_path)
    link(root, "deploy/current.yaml", "web.yaml")
    result = init(root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped" not in result.stderr
    assert "      - deploy/current.yaml\n" in result.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", [("--yes",), ()])
def test_a_tagtrail_yaml_linked_out_of_the_repository_is_neither_read_nor_replaced(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    root = repository(tmp_path)
    link(root, "tagtrail.yaml", "/dev/zero")
    result = init(root, args)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.endswith(
        "tagtrail.yaml is a link out of the repository; init neither reads nor replaces it: remove it and run"
        " `tagtrail init` again\n"
    )
    assert "Traceback" not in result.stderr
    assert (root / "tagtrail.yaml").readlink() == Path("/dev/zero")


def test_a_yaml_directive_of_another_version_is_not_yaml_to_init(tmp_path: Path) -> None:
    """ruamel.yaml refuses `%YAML 1.20` with an AssertionError, not a YAMLError: a workflow or a deploy file
    that starts with one is not read (as the reference finder refuses it), never an internal error."""
    odd = "%YAML 1.20\n---\n"
    root = repository(tmp_path)
    commit(
        root,
        {".github/workflows/odd.yml": odd + WORKFLOW, "deploy/odd.yaml": f"{odd}image: {IMAGE}\n"},
        "odd",
    )
    proposal = survey(root)
    assert proposal.image.value == "ghcr.io/acme/shop/{app}"
    assert [f.path for f in proposal.files] == ["deploy/web.yaml"]
