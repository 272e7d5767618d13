"""The pure parts of how init reads an image name: a workflow's expressions, the per-app keys of a matrix or of
a reusable workflow's callers, and the templates a deploy file's names can be read as."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.git import init_repo
from tagtrail.features.init import survey
from tagtrail.features.init.deployfiles import app_templates
from tagtrail.features.init.expressions import Context, app_key, filled, per_app, resolve

APPS = ["api", "web", "web-admin"]


@pytest.mark.parametrize(
    ("text", "context", "resolved"),
    [
        (
            "ghcr.io/acme/shop-${{ matrix.svc }}",
            Context({}, None, {"matrix.svc": "{app}"}),
            "ghcr.io/acme/shop-{app}",
        ),
        ("ghcr.io/acme/${{ matrix.other }}", Context({}, None, {"matrix.svc": "{app}"}), None),
        ("ghcr.io/x/${{ matrix.app }}", Context({}, None, open_matrix=True), "ghcr.io/x/{app}"),
        (
            "${{ env.IMAGE }}",
            Context(
                {"IMAGE": "${{ env.R }}/${{ github.repository }}/${{ inputs.app }}-svc", "R": "ghcr.io"},
                "acme/shop",
                {"inputs.app": "{app}"},
            ),
            "ghcr.io/acme/shop/{app}-svc",
        ),
        (
            "${{ vars.REGISTRY }}/acme/${{ matrix.app }}",
            Context({}, None, open_matrix=True),
            "{vars.registry}/acme/{app}",
        ),
        ("ghcr.io/${{ secrets.OWNER }}/{app}", Context({}, "acme/shop"), None),
        (
            "ghcr.io/${{ github.repository_owner }}/${{ matrix.image }}",
            Context({}, "acme/shop", {"matrix.image": "{app}-svc"}),
            "ghcr.io/acme/{app}-svc",
        ),
    ],
)
def test_an_image_name_is_known_where_its_expressions_are(
    text: str, context: Context, resolved: str | None
) -> None:
    assert resolve(text, context) == resolved


def test_include_entries_that_pair_each_app_with_its_image_give_one_template() -> None:
    entries = [
        {
            "name": "api",
            "context": "./src/api",
            "image": "ghcr.io/acme/api-service",
            "platform": "linux/amd64",
        },
        {
            "name": "web",
            "context": "./src/web",
            "image": "ghcr.io/acme/web-service",
            "platform": "linux/amd64",
        },
    ]
    assert per_app(entries, APPS) == (
        {
            "name": "{app}",
            "context": "./src/{app}",
            "image": "ghcr.io/acme/{app}-service",
            "platform": "linux/amd64",
        },
        {},
    )
    # names that follow no one template are not a template of any: they are said, by app
    entries[1]["image"] = "ghcr.io/acme/frontend"
    paired, mixed = per_app(entries, APPS)
    assert "image" not in paired
    assert mixed == {"image": "api → ghcr.io/acme/api-service, web → ghcr.io/acme/frontend"}


def test_an_include_list_of_images_with_no_one_name_is_said_in_one_line_with_what_to_do(
    tmp_path: Path,
) -> None:
    workflow = (
        "jobs:\n  build:\n    strategy:\n      matrix:\n        include:\n"
        "          - {app: api, image: ghcr.io/acme/backend}\n          - {app: web, image: ghcr.io/acme/frontend}\n"
        "    steps:\n      - uses: docker/metadata-action@v5\n        with:\n          images: ${{ matrix.image }}\n"
    )
    files = {f"apps/{app}/Dockerfile": "FROM scratch\n" for app in ("api", "web")}
    root = init_repo(tmp_path / "repo", {**files, ".github/workflows/build.yml": workflow})
    proposal = survey(root)
    (said,) = [t for t in proposal.todo if "${{ matrix.image }}" in t]
    assert said == (
        "images: ${{ matrix.image }} in .github/workflows/build.yml:9: matrix.image gives each app an image of its"
        " own that follows no one name (api → ghcr.io/acme/backend, web → ghcr.io/acme/frontend); tagtrail names"
        " all the apps' images with one template: rename them to one pattern with the app's name in it, then set"
        " image: to it"
    )


@pytest.mark.parametrize(
    ("values", "apps"),
    [
        (["api", "web"], True),
        (["linux/amd64", "linux/arm64"], False),
        ([], False),
        (["api", "x", "y"], False),
    ],
)
def test_a_matrix_key_is_the_apps_when_its_values_are_their_folders(values: list[str], apps: bool) -> None:
    assert app_key(values, APPS) == apps


@pytest.mark.parametrize(
    ("name", "templates"),
    [
        ("ghcr.io/acme/shop-api", [("ghcr.io/acme/shop-{app}", "api")]),
        ("ghcr.io/acme/api-service", [("ghcr.io/acme/{app}-service", "api")]),
        ("ghcr.io/acme/images/web", [("ghcr.io/acme/images/{app}", "web")]),
        (
            "ghcr.io/acme/web-admin",
            [("ghcr.io/acme/{app}-admin", "web"), ("ghcr.io/acme/{app}", "web-admin")],
        ),
        ("ghcr.io/acme/apiary", []),  # inside a longer word: not the app's name
        ("docker.io/library/web", []),  # Docker Hub's own images are nobody's app
        ("api.example.com/acme/x", []),  # the registry's host is not a name
    ],
)
def test_the_templates_a_deploy_files_name_can_be_read_as(
    name: str, templates: list[tuple[str, str]]
) -> None:
    assert app_templates(name, APPS) == templates


def test_a_repository_variable_is_filled_from_the_names_the_deploy_files_use() -> None:
    names = ["ghcr.io/other/{app}", "registry.lan:5000/team-a/{app}"]
    assert filled("{vars.registry}/team-a/{app}", names) == (
        "registry.lan:5000/team-a/{app}",
        {"registry": "registry.lan:5000"},
    )
    assert filled("{vars.registry}/team-b/{app}", names) is None


def test_a_workflow_and_deploy_files_that_name_different_images_are_both_said(tmp_path: Path) -> None:
    workflow = (
        "jobs:\n  build:\n    strategy:\n      matrix:\n        app: [web]\n    steps:\n"
        "      - uses: docker/metadata-action@v5\n        with:\n          images: ghcr.io/acme/new/${{ matrix.app }}\n"
    )
    deploy = "image: ghcr.io/acme/old-web:main.20251014-051038.185c95c\n"
    root = init_repo(
        tmp_path / "repo",
        {
            "apps/web/Dockerfile": "FROM scratch\n",
            ".github/workflows/b.yml": workflow,
            "deploy/web.yaml": deploy,
        },
    )
    proposal = survey(root)
    assert proposal.image.value == "ghcr.io/acme/new/{app}"  # where the workflow pushes: tags are read there
    (said,) = [t for t in proposal.todo if "old-" in t]  # once, with both names
    assert said == (
        "image: is ghcr.io/acme/new/{app}, which no deploy file names; they name ghcr.io/acme/old-{app} (1 reference,"
        " first deploy/web.yaml:1): if that is where images go now, set image: to it; if it is a copy of the pushed"
        " images, list it in deploy.aliases"
    )
