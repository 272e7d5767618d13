"""`tagtrail ci github` and `tagtrail ci dependabot`: valid files, written once, hand edits kept."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

from bench.cli import run
from bench.git import init_repo
from tagtrail.features.ci import ACTIONS

CONFIG = """\
image: ghcr.io/acme/homelab/{app}
apps:
  exclude: [shared]
deploy:
  git:
    files: [pulumi/Pulumi.prod.yaml, k8s/web.yaml]
"""

FILES = {
    "tagtrail.yaml": CONFIG,
    "apps/web/Dockerfile": "FROM scratch\n",
    "apps/web/package.json": "{}\n",
    "apps/api/Dockerfile": "FROM scratch\n",
    "apps/api/requirements.txt": "httpx\n",
    "apps/api/requirements-dev.txt": "pytest\n",
    "apps/svc/Containerfile": "FROM scratch\n",
    "apps/svc/go.mod": "module x\n",
    "apps/tool/Dockerfile": "FROM scratch\n",
    "apps/tool/pyproject.toml": "[project]\nname='t'\n",
    "apps/tool/uv.lock": "version = 1\n",
    "apps/shared/requirements.txt": "not an app\n",
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = init_repo(tmp_path / "mono", FILES)
    monkeypatch.chdir(root)
    return root


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("actionlint") or str(Path(__file__).parents[2] / ".venv/bin/actionlint")
    assert shutil.which("shellcheck"), "shellcheck checks the run: scripts; ./scripts/setup installs it"
    return subprocess.run([binary, "-no-color", str(path)], capture_output=True, text=True, check=False)


def load(path: Path) -> dict:  # type: ignore[type-arg]
    return dict(YAML(typ="safe").load(path.read_text()))


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--platforms", "linux/amd64,linux/arm64", "--schedule", "17 4 * * 1"],
        ["--version-tags"],
        ["--sign"],
        ["--attest"],
    ],
)
def test_the_workflow_passes_actionlint(
    capsys: pytest.CaptureFixture[str], repo: Path, args: list[str]
) -> None:
    code, _, err = run(capsys, "ci", "github", *args)
    assert code == 0, err
    path = repo / ".github/workflows/build.yml"
    result = actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = load(path)
    assert workflow["on"]["push"]["paths-ignore"] == ["pulumi/Pulumi.prod.yaml", "k8s/web.yaml"]
    build = workflow["jobs"]["build"]
    keyless = {"id-token": "write", "attestations": "write"} if "--attest" in args else {}
    assert build["permissions"] == {"contents": "read", "packages": "write", **keyless}
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.discover.outputs.matrix) }}"
    steps = {s.get("uses", "").split("@")[0]: s for s in build["steps"]}
    assert steps["docker/metadata-action"]["with"]["tags"].strip() == (
        "type=raw,value={{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
    )
    assert steps["docker/build-push-action"]["with"]["file"] == "${{ matrix.dockerfile }}"
    assert steps["docker/login-action"]["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    discover = " ".join(s.get("run", "") for s in workflow["jobs"]["discover"]["steps"])
    assert 'tagtrail apps --changed "$base" --json' in discover


def test_actions_are_pinned_by_full_sha_unless_asked(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    run(capsys, "ci", "github")
    text = (repo / ".github/workflows/build.yml").read_text()
    for action, (sha, version) in ACTIONS.items():
        if action in (
            "docker/setup-qemu-action",
            "sigstore/cosign-installer",
            "actions/attest-build-provenance",
        ):
            assert action not in text  # amd64 only: no emulation needed; signing and attesting are opt-in
            continue
        assert f"uses: {action}@{sha} # {version}" in text
    run(capsys, "ci", "github", "--version-tags", "--force")
    major = ACTIONS["actions/checkout"][1].split(".")[0]
    assert f"uses: actions/checkout@{major}\n" in (repo / ".github/workflows/build.yml").read_text()


def test_signing_is_opt_in_with_a_pinned_installer_and_the_key_from_a_secret(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    assert run(capsys, "ci", "github", "--sign")[0] == 0
    steps = load(repo / ".github/workflows/build.yml")["jobs"]["build"]["steps"]
    sha, version = ACTIONS["sigstore/cosign-installer"]
    installer, signing = steps[-2:]
    assert installer["uses"] == f"sigstore/cosign-installer@{sha}"
    assert signing["env"]["COSIGN_KEY"] == "${{ secrets.COSIGN_PRIVATE_KEY }}"
    assert signing["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"
    assert signing["run"] == 'cosign sign --yes --tlog-upload=false --key env://COSIGN_KEY "$IMAGE@$DIGEST"'
    assert (
        f"sigstore/cosign-installer@{sha} # {version}" in (repo / ".github/workflows/build.yml").read_text()
    )


@pytest.mark.parametrize("how", ["--attest", "deploy.verify.github"])
def test_attesting_with_this_run_s_identity(capsys: pytest.CaptureFixture[str], repo: Path, how: str) -> None:
    """What deploy.verify.github checks, the workflow makes: SLSA provenance of the pushed digest, signed
    with the run's OIDC identity, attached to the image; configuring the check is enough to get it."""
    if how == "--attest":
        args = ["--attest"]
    else:
        config = repo / "tagtrail.yaml"
        config.write_text(config.read_text() + "  verify:\n    github:\n      repository: acme/homelab\n")
        args = []
    assert run(capsys, "ci", "github", *args)[0] == 0
    path = repo / ".github/workflows/build.yml"
    build = load(path)["jobs"]["build"]
    assert build["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    sha, version = ACTIONS["actions/attest-build-provenance"]
    attesting = build["steps"][-1]
    assert attesting["uses"] == f"actions/attest-build-provenance@{sha}"
    assert attesting["with"] == {
        "subject-name": "${{ matrix.image }}",
        "subject-digest": "${{ steps.build.outputs.digest }}",
        "push-to-registry": True,
    }
    assert f"actions/attest-build-provenance@{sha} # {version}" in path.read_text()
    assert actionlint(path).returncode == 0


def test_multi_arch_and_schedule(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    run(capsys, "ci", "github", "--platforms", "linux/amd64,linux/arm64", "--schedule", "17 4 * * 1")
    workflow = load(repo / ".github/workflows/build.yml")
    assert workflow["on"]["schedule"] == [{"cron": "17 4 * * 1"}]
    uses = [s.get("uses", "") for s in workflow["jobs"]["build"]["steps"]]
    assert any(u.startswith("docker/setup-qemu-action@") for u in uses)
    push = next(
        s for s in workflow["jobs"]["build"]["steps"] if s.get("uses", "").startswith("docker/build-push")
    )
    assert push["with"]["platforms"] == "linux/amd64,linux/arm64"


def test_sha_length_reaches_metadata_action(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (repo / "tagtrail.yaml").write_text(CONFIG + "sha_length: 12\n")
    run(capsys, "ci", "github")
    meta = next(
        s
        for s in load(repo / ".github/workflows/build.yml")["jobs"]["build"]["steps"]
        if s.get("id") == "meta"
    )
    assert meta["env"] == {"DOCKER_METADATA_SHORT_SHA_LENGTH": "12"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule", "every monday"], "not a cron expression"),
        (["--platforms", "linux"], "is not a platform"),
    ],
)
def test_bad_options_are_one_line(
    capsys: pytest.CaptureFixture[str], repo: Path, args: list[str], message: str
) -> None:
    code, _, err = run(capsys, "ci", "github", *args)
    assert code == 1
    assert message in err
    assert not (repo / ".github").exists()  # nothing written on bad input


@pytest.mark.parametrize("kind", ["github", "dependabot"])
def test_generators_are_idempotent_and_keep_hand_edits(
    capsys: pytest.CaptureFixture[str], repo: Path, kind: str
) -> None:
    path = repo / (".github/workflows/build.yml" if kind == "github" else ".github/dependabot.yml")
    assert run(capsys, "ci", kind)[2].strip().endswith("created")
    first = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    assert run(capsys, "ci", kind)[2].strip().endswith("unchanged")
    assert path.stat().st_mtime_ns == stamp  # not rewritten
    if kind == "dependabot":  # a new app changes the file: tagtrail updates what it wrote itself
        (repo / "apps/new").mkdir()
        (repo / "apps/new/Dockerfile").write_text("FROM scratch\n")
        assert run(capsys, "ci", kind)[2].strip().endswith("updated")
        first = path.read_bytes()
    path.write_text(
        path.read_text().replace("weekly" if kind == "dependabot" else "ubuntu-latest", "my-edit", 1)
    )
    code, out, err = run(capsys, "ci", kind)
    assert code == 1
    assert "edited by hand" in err
    assert "--force" in err
    assert "\n-" in out  # the diff of what would change
    assert "my-edit" in out
    assert "my-edit" in path.read_text()  # kept
    code, _, err = run(capsys, "ci", kind, "--force")
    assert code == 0
    assert path.read_bytes() == first


def test_a_file_tagtrail_did_not_write_is_not_replaced(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    path = repo / ".github/workflows/build.yml"
    path.parent.mkdir(parents=True)
    path.write_text("name: mine\non: push\njobs: {}\n")
    code, _, err = run(capsys, "ci", "github")
    assert code == 1
    assert "not written by tagtrail" in err
    assert path.read_text() == "name: mine\non: push\njobs: {}\n"


# Dependabot's documented schema (docs.github.com: "Dependabot options reference"), the parts tagtrail uses.
Ecosystem = Literal[
    "bundler",
    "cargo",
    "composer",
    "devcontainers",
    "docker",
    "docker-compose",
    "dotnet-sdk",
    "elm",
    "gitsubmodule",
    "github-actions",
    "gomod",
    "gradle",
    "helm",
    "maven",
    "mix",
    "npm",
    "nuget",
    "pip",
    "pub",
    "swift",
    "terraform",
    "uv",
    "bun",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Schedule(_Strict):
    interval: Literal["daily", "weekly", "monthly", "quarterly", "semiannually", "yearly", "cron"]
    day: str | None = None
    time: str | None = None
    timezone: str | None = None


class Group(_Strict):
    applies_to: Literal["version-updates", "security-updates"] | None = Field(None, alias="applies-to")
    dependency_type: Literal["development", "production"] | None = Field(None, alias="dependency-type")
    patterns: list[str] | None = None
    exclude_patterns: list[str] | None = Field(None, alias="exclude-patterns")
    update_types: list[Literal["major", "minor", "patch"]] | None = Field(None, alias="update-types")


class Update(_Strict):
    package_ecosystem: Ecosystem = Field(alias="package-ecosystem")
    directory: str = Field(pattern=r"^/")
    schedule: Schedule
    open_pull_requests_limit: int | None = Field(None, alias="open-pull-requests-limit", ge=0)
    groups: dict[str, Group] | None = None


class DependabotFile(_Strict):
    version: Literal[2]
    updates: list[Update]


def test_dependabot_covers_every_app_folder_and_is_valid(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    code, _, err = run(capsys, "ci", "dependabot")
    assert code == 0, err
    parsed = DependabotFile.model_validate(load(repo / ".github/dependabot.yml"))
    entries = {(u.package_ecosystem, u.directory) for u in parsed.updates}
    assert entries == {
        ("github-actions", "/"),
        ("docker", "/apps/api"),
        ("pip", "/apps/api"),
        ("docker", "/apps/svc"),
        ("gomod", "/apps/svc"),
        ("docker", "/apps/tool"),
        ("uv", "/apps/tool"),
        ("docker", "/apps/web"),
        ("npm", "/apps/web"),
    }
    for update in parsed.updates:
        assert update.schedule.interval == "weekly"
        assert update.groups is not None
        [group] = update.groups.values()
        assert group.update_types == ["minor", "patch"]  # majors and security fixes come on their own
    assert "separate limit" in (repo / ".github/dependabot.yml").read_text()


@pytest.mark.parametrize(
    ("named", "expected"),
    [("", ["api", "svc", "tool", "web"]), ("web", ["web"]), ("web, tool", ["tool", "web"])],
)
def test_a_dispatch_with_apps_builds_only_those_and_every_build_records_its_base(
    capsys: pytest.CaptureFixture[str], repo: Path, named: str, expected: list[str]
) -> None:
    """The discover step's script run as GitHub would run it for a workflow_dispatch (bash, real jq, real
    `tagtrail apps`), with the `apps` input tagtrail serve sends for apps on a moved base."""
    code, _, err = run(capsys, "ci", "github")
    assert code == 0, err
    workflow = load(repo / ".github/workflows/build.yml")
    dispatch = workflow["on"]["workflow_dispatch"]["inputs"]["apps"]
    assert (dispatch["type"], dispatch["required"]) == ("string", False)
    step = next(s for s in workflow["jobs"]["discover"]["steps"] if s.get("id") == "apps")
    output = repo / "github_output"
    env = {
        "PATH": f"{Path(__file__).parents[2] / '.venv/bin'}:/usr/bin:/bin",
        "HOME": str(repo),
        "EVENT": "workflow_dispatch",
        "BEFORE": "",
        "APPS": named,
        "ONLY": step["env"]["ONLY"],
        "GITHUB_OUTPUT": str(output),
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, check=True)
    matrix = output.read_text().splitlines()[0].removeprefix("matrix=")
    assert sorted(entry["app"] for entry in json.loads(matrix)["include"]) == expected
    build = workflow["jobs"]["build"]["steps"]
    base = next(s for s in build if s.get("id") == "base")
    assert base["run"] == 'tagtrail base-images --for-build "$APP" >> "$GITHUB_OUTPUT"'
    push = next(s for s in build if s.get("id") == "build")["with"]
    # metadata-action's annotations carry the revision on each image manifest: a deploy reads the commit there
    assert push["annotations"].splitlines() == [
        "${{ steps.meta.outputs.annotations }}",
        "${{ steps.base.outputs.annotations }}",
    ]
    assert push["labels"].splitlines()[-1] == "${{ steps.base.outputs.labels }}"
    assert push["build-contexts"] == "${{ steps.base.outputs.context }}"
