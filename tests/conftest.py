"""The test bench: real components on loopback, an isolated HOME per test, and fixtures that clean up.

- `registry`, `auth_registry`: CNCF distribution (Debian's docker-registry), plain and with htpasswd basic
  auth, one per test session; each test works in its own repository names (`repo_name`).
- `pusher`, `auth_pusher`: push synthetic images (distinct digests, chosen labels and `created`) and
  multi-arch indexes through the registry's real API.
- `token_registry`: a second distribution serving the same storage as `registry`, behind `auth: token`,
  with `token_issuer` signing the JWTs it validates (the bearer flow of ghcr.io and Docker Hub).
- `tls_registry`: distribution serving HTTPS with a certificate from a test CA (`tls_ca`).
- `fault_proxy`: a proxy in front of `registry` that injects 5xx, 429, stalls, truncated and malformed
  bodies and paginates like the registries that do.
- `file_remote`, `http_remote`: bare git repositories reached over file:// and over smart HTTP
  (`git http-backend` behind basic auth).
- `github_pulls`: a local GitHub for pull requests (REST and the GraphQL auto-merge mutations) with a bare
  repository behind it, every exchange checked against GitHub's OpenAPI description and GraphQL schema
  (`github_openapi`, parsed once per session); see tests/bench/githubpulls.py.
- every test gets its own HOME, XDG folders, docker/containers auth files and git identity, so nothing the
  machine's user configured (or a test wrote) leaks into another test.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from bench.faultproxy import FaultProxy
from bench.git import Remote, bare_repo
from bench.githttp import GitHTTPServer
from bench.githubpulls import GitHubPulls
from bench.githubpulls_check import Description
from bench.pki import KeyPair, certificate_authority, server_certificate
from bench.tokens import TokenIssuer
from bench.users import GIT_USER, REGISTRY_USER
from tagtrail_demo import ImagePusher, RegistryServer

# Timing-based failures are noise on shared machines: speed lives in benchmarks/, not here.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# CI (which sets CI=true) prints the blob that reproduces a failure; the write-back property test
# (tests/unit/test_refs_property.py) reads the same variable to run 10,000 examples there, 500 locally.
settings.register_profile("ci", parent=settings.get_profile("default"), print_blob=True)
# The nightly fuzz run (./scripts/fuzz): 100,000 generated inputs per fuzz target in tests/fuzz/. Only that
# script selects it (HYPOTHESIS_PROFILE=fuzz-nightly), and it runs tests/fuzz/ alone.
settings.register_profile(
    "fuzz-nightly", parent=settings.get_profile("ci"), max_examples=100_000, database=None
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "default")
)

_counter = itertools.count()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME: registry clients write ~/.docker/config.json, which skopeo and buildah then use."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "TAGTRAIL_", "DOCKER_", "REGISTRY_AUTH", "GIT_")):
            monkeypatch.delenv(name)
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_RUNTIME_DIR": str(home / ".run"),
        "DOCKER_CONFIG": str(home / ".docker"),
        "REGISTRY_AUTH_FILE": str(home / ".config/containers/auth.json"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.invalid",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.invalid",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (home / ".run").mkdir(mode=0o700)
    (home / ".config/containers").mkdir(parents=True)
    (home / ".config/containers/auth.json").write_text('{"auths": {}}\n')  # buildah refuses a missing one
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    return home


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("auth-registry"), users=dict([REGISTRY_USER])) as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def token_issuer() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(users=dict([REGISTRY_USER])).start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer, token_issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("token-registry")
    server = RegistryServer(
        root, extra_config=token_issuer.registry_config(root), shared_storage=registry.storage
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def tls_ca() -> KeyPair:
    return certificate_authority()


@pytest.fixture(scope="session")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer, tls_ca: KeyPair
) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("tls-registry")
    cert, key = server_certificate(tls_ca).write(root / "pki", "server")
    with RegistryServer(root, tls=(cert, key), shared_storage=registry.storage) as server:
        yield server


@pytest.fixture
def fault_proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses, readable in registry logs."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    return f"test/{slug}-{next(_counter)}"


@pytest.fixture
def pusher(registry: RegistryServer) -> Iterator[ImagePusher]:
    with ImagePusher(registry.url) as client:
        yield client


@pytest.fixture
def auth_pusher(auth_registry: RegistryServer) -> Iterator[ImagePusher]:
    with ImagePusher(auth_registry.url, auth=REGISTRY_USER) as client:
        yield client


@pytest.fixture
def file_remote(tmp_path: Path) -> Remote:
    path = bare_repo(tmp_path / "remotes" / "origin.git")
    return Remote(path, path.as_uri())


@pytest.fixture(scope="session")
def git_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(tmp_path_factory.mktemp("git-http"), users=dict([GIT_USER])).start()
    yield server
    server.stop()


@pytest.fixture
def http_remote(git_http_server: GitHTTPServer, repo_name: str) -> Remote:
    """A bare repository served over smart HTTP; the URL carries the credentials."""
    name = repo_name.replace("/", "-") + ".git"
    path = bare_repo(git_http_server.root / name)
    return Remote(path, git_http_server.url(name, user=GIT_USER[0], password=GIT_USER[1]))


@pytest.fixture(scope="session")
def github_openapi() -> Description:
    """GitHub's REST description and GraphQL schema (from the npm packages scripts/setup installs)."""
    try:
        return Description()
    except FileNotFoundError as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture
def github_pulls(github_openapi: Description, tmp_path: Path) -> Iterator[GitHubPulls]:
    """A GitHub with one repository, acme/homelab; the test fails if an exchange broke GitHub's description
    (a test that sends a bad request on purpose clears `.violations` once it has asserted on them)."""
    github = GitHubPulls(github_openapi, tmp_path / "github").start()
    yield github
    github.stop()
    broken = "\n".join(github.violations)
    assert not broken, f"exchanges with the GitHub stand-in break GitHub's description:\n{broken}"
