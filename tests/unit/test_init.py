"""`tagtrail init` on repositories of several shapes, without services: what it proposes, why, and that
the file it writes loads and finds every app's references the way plan will."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from bench import samples
from bench.cli import run
from bench.git import git, init_repo
from tagtrail.adapters.refs import Matcher, find
from tagtrail.config import DEFAULT_SCHEME, Config, parse_config
from tagtrail.features.init import github_repository, survey
from tagtrail.features.init.deployfiles import image_of
from tagtrail.features.init.workflow import MetadataStep, choose_scheme

TAG = "main.20251014-051038.185c95c"
README = (Path(__file__).parents[2] / "README.md").read_text()


def closed_port() -> int:
    """A loopback port nothing listens on: a registry there cannot be reached, at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def references(root: Path, config: Config) -> dict[str, list[str]]:
    """app → the files naming it, found as plan finds them: the config's own matcher over its files."""
    assert config.deploy.git is not None
    matcher = Matcher(config.image, config.deploy.aliases)
    found: dict[str, list[str]] = {}
    for path in config.deploy.git.files:
        for ref in find(path, (root / path).read_text(), matcher):
            found.setdefault(ref.app, []).append(path)
    return found


def test_the_seed_repository(tmp_path: Path) -> None:
    sample = samples.seed(tmp_path / "homeslice", "ghcr.io", "mikepartelow", TAG)
    proposal = survey(sample.root)
    config = parse_config(proposal.text)
    assert [a.name for a in proposal.apps] == sorted(sample.apps)
    # the shared Python folder: an input of the app whose Dockerfile copies it, and not an app
    assert config.apps.inputs == {"chime": ["apps/pylib/**"]}
    assert config.apps.exclude == ["pylib"]
    assert any("apps/lights/Makefile" in t and "apps.inputs.lights" in t for t in proposal.todo)
    # the post's zone: metadata-action rendered UTC, so UTC reads the tags; the zone meant is named
    assert config.scheme == "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
    assert "America/Los_Angeles" in proposal.text
    assert any("tz='UTC' in .github/workflows/build.yml:21" in t for t in proposal.todo)
    assert config.image == "ghcr.io/mikepartelow/homeslice/{app}"  # env + github.repository from the remote
    assert config.deploy.aliases == ["registry.lan:32000/{app}"]
    assert config.deploy.branch == "main"
    assert config.deploy.git is not None
    assert config.deploy.git.files == ["pulumi/Pulumi.prod.yaml"]
    assert "# Pulumi stack config\n" in proposal.text
    # every app's reference, gosonos under homeslice:sonos and buttons under the alias included
    assert references(sample.root, config) == {app: ["pulumi/Pulumi.prod.yaml"] for app in sample.apps}
    assert proposal.references() == dict.fromkeys(sorted(sample.apps), 1)
    (stack,) = proposal.files
    assert [m.text for m in stack.third_party] == ["nginx:1.25", "docker.io/traefik:v3.1"]


def test_a_kustomize_overlay_repository(tmp_path: Path) -> None:
    sample = samples.kustomize(tmp_path / "shop", "registry.lan:5000", "acme", TAG)
    proposal = survey(sample.root)
    config = parse_config(proposal.text)
    assert config.apps.root == "services"
    # no workflow: the name the deploy files use, not ghcr.io after the remote
    assert config.image == "registry.lan:5000/acme/shop/{app}"
    assert config.registries == {}  # plain HTTP only for loopback
    assert config.scheme == DEFAULT_SCHEME
    assert config.deploy.git is not None
    # by kind, manifests first; not the base, whose names are placeholders the overlay sets
    assert config.deploy.git.files == ["deploy/jobs/migrate.yaml", "deploy/overlays/prod/kustomization.yaml"]
    assert {f.path: f.kind for f in proposal.files} == sample.files
    assert proposal.text.index("# Kubernetes manifests") < proposal.text.index("# kustomization")
    assert references(sample.root, config) == {
        "api": ["deploy/jobs/migrate.yaml", "deploy/overlays/prod/kustomization.yaml"],
        "web": ["deploy/overlays/prod/kustomization.yaml"],
    }


def test_a_helm_values_repository(tmp_path: Path) -> None:
    sample = samples.helm(tmp_path / "helmy", "127.0.0.1:5000", "acme", "main-20251014051038-185c95c0")
    proposal = survey(sample.root)
    config = parse_config(proposal.text)
    assert config.scheme == "{{branch}}-{{date 'YYYYMMDDHHmmss'}}-{{sha}}"
    assert config.sha_length == 8  # DOCKER_METADATA_SHORT_SHA_LENGTH of the job
    assert config.image == "127.0.0.1:5000/acme/helmy/{app}"  # github.repository_owner from the remote
    assert config.registries["127.0.0.1:5000"].insecure
    assert [line.split(":")[0] for line in proposal.scheme.ignored] == ["type=sha", "type=ref,event=branch"]
    assert config.deploy.git is not None
    assert config.deploy.git.files == ["charts/helmy/values.yaml", "environments/prod/values.yaml"]
    assert {f.kind for f in proposal.files} == {"Helm values"}
    found = references(sample.root, config)
    assert found == {
        "web": ["charts/helmy/values.yaml", "environments/prod/values.yaml"],
        "worker": ["charts/helmy/values.yaml"],  # registry: + repository: + tag:
    }
    assert [m.text for m in proposal.files[0].third_party] == ["bitnami/postgresql"]


def test_a_release_workflow_of_version_tags_does_not_hide_the_build_workflow() -> None:
    release = step("type=semver,pattern={{version}}")
    build = step("type=raw,value={{branch}}.{{date 'YYYYMMDD-HHmmss'}}.{{sha}}")
    assert choose_scheme([release, build]).scheme == "{{branch}}.{{date 'YYYYMMDD-HHmmss'}}.{{sha}}"
    assert choose_scheme([release]).scheme == DEFAULT_SCHEME


def test_an_image_the_workflow_takes_whole_from_the_matrix_is_not_guessed(tmp_path: Path) -> None:
    """tagtrail's own workflow has `images: ${{ matrix.image }}`: no repository can be read from it."""
    workflow = (
        "jobs:\n  build:\n    steps:\n      - uses: docker/metadata-action@v6\n        with:\n"
        "          images: ${{ matrix.image }}\n          tags: |\n            type=raw,value={{branch}}.{{sha}}\n"
    )
    root = init_repo(
        tmp_path / "repo", {"apps/web/Dockerfile": "FROM scratch\n", ".github/workflows/build.yml": workflow}
    )
    proposal = survey(root)
    assert proposal.image.value == "ghcr.io/owner/repo/{app}"
    assert any("does not name one image per app" in t for t in proposal.todo)
    assert any("set image:" in t for t in proposal.todo)
    assert parse_config(proposal.text).scheme == "{{branch}}.{{sha}}"


def test_images_pushed_to_two_registries_give_the_image_and_an_alias(tmp_path: Path) -> None:
    workflow = (
        "env:\n  OWNER: ${{ github.repository_owner }}\njobs:\n  build:\n    steps:\n"
        "      - uses: docker/metadata-action@v6\n        with:\n          images: |\n"
        "            ghcr.io/${{ env.OWNER }}/x/${{ matrix.app }}\n"
        "            name=docker.io/${{ env.OWNER }}/${{ matrix.app }},enable=${{ github.ref == 'refs/heads/main' }}\n"
        "            ${{ vars.MIRROR }}/${{ matrix.app }}\n"
    )
    root = init_repo(
        tmp_path / "repo", {"apps/web/Dockerfile": "FROM scratch\n", ".github/workflows/b.yml": workflow}
    )
    git(root, "remote", "add", "origin", "https://github.com/Acme/x.git")
    proposal = survey(root)
    config = parse_config(proposal.text)
    assert config.image == "ghcr.io/acme/x/{app}"  # lowercase, as metadata-action and registries want it
    assert config.deploy.aliases == ["docker.io/acme/{app}"]
    assert any(
        "${{ vars.MIRROR }}/${{ matrix.app }}" in t and "repository variable" in t for t in proposal.todo
    )


def test_a_file_of_no_known_kind_is_listed_and_questioned(tmp_path: Path) -> None:
    compose = "services:\n  web:\n    image: ghcr.io/acme/tiny/web:latest\n    build: apps/web\n"
    root = init_repo(tmp_path / "tiny", {"apps/web/Dockerfile": "FROM scratch\n", "compose.yaml": compose})
    git(root, "remote", "add", "origin", "https://github.com/acme/tiny.git")
    proposal = survey(root)
    assert [(f.path, f.kind) for f in proposal.files] == [("compose.yaml", "other YAML")]
    assert any(t.startswith("compose.yaml names an app's image") for t in proposal.todo)


def test_a_repository_with_no_workflow_and_no_deploy_files(tmp_path: Path) -> None:
    sample = samples.plain(tmp_path / "tiny", "acme")
    proposal = survey(sample.root)
    config = parse_config(proposal.text)
    assert config.image == "ghcr.io/acme/tiny/{app}"
    assert config.scheme == DEFAULT_SCHEME
    assert config.deploy.git is None
    assert "#   files: [" in proposal.text
    assert any("deploy.git.files" in t for t in proposal.todo)
    assert any("tagtrail ci github" in t for t in proposal.todo)


def step(tags: str, flavor: dict[str, str] | None = None) -> MetadataStep:
    return MetadataStep(
        "w.yml:3", ("ghcr.io/o/r/{app}",), (), tuple(tags.splitlines()), "w.yml:9", flavor or {}, None, False
    )


@pytest.mark.parametrize(
    ("tags", "flavor", "scheme", "said"),
    [
        (
            "type=raw,value={{branch}}.{{date 'YYYYMMDD-HHmmss' tz='Europe/Berlin'}}.{{sha}}",
            None,
            "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='Europe/Berlin'}}.{{sha}}",
            "",
        ),
        ("type=raw,value={{date 'YYYYMMDD'}}-{{sha}}", None, DEFAULT_SCHEME, "has no {{branch}}"),
        (
            "type=raw,value={{branch}}.{{date 'YYYYMMDD' tz='Mars/Olympus'}}.{{sha}}",
            None,
            "{{branch}}.{{date 'YYYYMMDD' tz='UTC'}}.{{sha}}",
            "write tz='UTC'",
        ),
        ("type=sha\ntype=semver,pattern={{version}}", None, DEFAULT_SCHEME, "change the tags in w.yml:9"),
        ("type=raw,value={{branch}}-{{sha}}", {"prefix": "b-"}, "b-{{branch}}-{{sha}}", ""),
        ('type=raw,"value={{branch}},{{sha}}",priority=900', None, "{{branch}},{{sha}}", ""),
    ],
)
def test_metadata_action_tags_become_a_scheme_or_say_why_not(
    tags: str, flavor: dict[str, str] | None, scheme: str, said: str
) -> None:
    choice = choose_scheme([step(tags, flavor)])
    assert choice.scheme == scheme
    assert said in " ".join(choice.todo)
    parse_config(f'scheme: "{choice.scheme}"\nimage: ghcr.io/o/r/{{app}}\n')


@pytest.mark.parametrize(
    ("key", "text", "image"),
    [
        ("image", "web", "docker.io/library/web"),
        ("nginx", "nginx:1.25", "docker.io/library/nginx"),
        (None, "ghcr.io/o/r/web:main", "ghcr.io/o/r/web"),
        ("address", "redis:6379", None),
        ("at", "03:00", None),
        ("encryptionsalt", "v1:Xq3pZ0kq8YQ=:v1:4o1c0oQm9E0r3Ywq:8n0cS6n0b9uXoFqT3cE7Vw==", None),
        ("image", "{{ .Values.image }}", None),
        ("schedule", "0 3 * * *", None),
    ],
)
def test_what_counts_as_an_image_in_a_deploy_file(key: str | None, text: str, image: str | None) -> None:
    ref = image_of(text, key)
    assert (ref.name if ref else None) == image


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://github.com/MikePartelow/homeslice.git", "mikepartelow/homeslice"),
        ("git@github.com:acme/shop.git", "acme/shop"),
        ("ssh://git@github.com/acme/shop", "acme/shop"),
        ("https://gitlab.com/acme/shop.git", None),
        (None, None),
    ],
)
def test_the_repository_from_the_remote(url: str | None, repository: str | None) -> None:
    assert github_repository(url) == repository


@pytest.fixture
def seed_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> samples.Sample:
    sample = samples.seed(tmp_path / "homeslice", f"127.0.0.1:{closed_port()}", "mikepartelow", TAG)
    monkeypatch.chdir(sample.root / "apps")  # anywhere in the repository: the file goes at its top
    return sample


def test_dry_run_prints_the_file_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], seed_repo: samples.Sample
) -> None:
    code, out, err = run(capsys, "init", "--dry-run")
    assert code == 0, err
    assert out == survey(seed_repo.root).text
    parse_config(out)
    assert not (seed_repo.root / "tagtrail.yaml").exists()
    assert "references  backup-todoist 1, buttons 1" in err  # the summary, on stderr
    assert "to do: apps/lights/Makefile" in err


def test_init_writes_checks_and_skips_the_plan_when_the_registry_does_not_answer(
    capsys: pytest.CaptureFixture[str], seed_repo: samples.Sample
) -> None:
    code, out, err = run(capsys, "init")
    assert code == 0, err
    written = (seed_repo.root / "tagtrail.yaml").read_text()
    assert written == survey(seed_repo.root).text
    assert "$ tagtrail config check" in out
    assert "tagtrail.yaml is valid" in out
    assert "not planning: registry 127.0.0.1:" in out
    assert "run `tagtrail plan` once it answers" in out
    for command in ("tagtrail ci github", "tagtrail ci dependabot", "tagtrail serve"):
        assert command in out
    code, out, _ = run(capsys, "init")  # again: the same file, nothing to ask
    assert code == 0
    assert "unchanged:" in out


def test_an_existing_file_is_replaced_only_when_the_user_says_so(
    capsys: pytest.CaptureFixture[str], seed_repo: samples.Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = seed_repo.root / "tagtrail.yaml"
    mine.write_text("image: ghcr.io/me/mine/{app}\n")
    code, out, err = run(capsys, "init")  # no terminal to ask on (pytest's stdin), no --yes
    assert code == 1
    assert err.count("\n") == 1
    assert "exists; run `tagtrail init --yes` to replace it" in err
    assert mine.read_text() == "image: ghcr.io/me/mine/{app}\n"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers: list[str] = []
    monkeypatch.setattr("typer.confirm", lambda text, default: answers.append(text) or False)
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert answers == [f"{mine} exists. Replace it?"]
    assert "kept" in out
    assert mine.read_text() == "image: ghcr.io/me/mine/{app}\n"

    code, out, _ = run(capsys, "init", "--yes")
    assert code == 0
    assert mine.read_text() == survey(seed_repo.root).text


def test_outside_a_git_repository_it_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loose").mkdir()
    monkeypatch.chdir(tmp_path / "loose")
    code, _, err = run(capsys, "init", "--dry-run")
    assert code == 1
    assert err.count("\n") == 1
    assert "not inside a git repository" in err


def test_an_app_folder_that_cannot_name_an_image_is_excluded_with_the_reason(tmp_path: Path) -> None:
    root = init_repo(
        tmp_path / "repo",
        {"apps/web/Dockerfile": "FROM scratch\n", "apps/Legacy_App/Dockerfile": "FROM scratch\n"},
    )
    proposal = survey(root)
    config = parse_config(proposal.text)
    assert config.apps.exclude == ["Legacy_App"]
    assert "cannot name an image" in proposal.text
    assert [a.name for a in proposal.apps] == ["web"]


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init", "--help")
    assert code == 0
    text = " ".join(out.replace("│", " ").split())  # as read, whatever the terminal's width folded
    for words in ("--dry-run", "--yes", "metadata-action", "Makefile", "config check", "plan"):
        assert words in text


def test_the_readme_quick_start_begins_with_init_and_shows_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    quick_start = README.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    first = re.search(r"^\$ (.*)$", quick_start, flags=re.MULTILINE)
    assert first is not None
    assert first[1] == "tagtrail init"
    summary = re.search(r"<!-- init-example -->\n```console\n\$ tagtrail init\n(.*?)```", README, re.DOTALL)
    written = re.search(r"<!-- init-example-file -->\n```yaml\n(.*?)```", README, re.DOTALL)
    assert summary is not None
    assert written is not None
    sample = samples.seed(tmp_path / "homeslice", "ghcr.io", "mikepartelow", TAG)  # the seed post's shape
    monkeypatch.chdir(sample.root)
    code, out, err = run(capsys, "init", "--dry-run")
    assert code == 0
    assert [line for line in summary[1].splitlines() if not line.startswith("✓ wrote")] == err.splitlines()
    assert written[1] == out
