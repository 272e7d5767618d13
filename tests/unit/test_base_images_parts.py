"""The parts of the base-image feature that need no service: the base_images: settings, the flags a
build gets, what a check row says, and which rebuilds are grouped together."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tagtrail.adapters.apps import App
from tagtrail.adapters.baseimages import AppBase, Memory, Recorded, ResolvedBase, Running, check
from tagtrail.adapters.baseimages.rebuild import Ledger
from tagtrail.adapters.baseimages.record import base_name
from tagtrail.adapters.notify import Notifier
from tagtrail.adapters.refs import Matcher
from tagtrail.adapters.registry import ImageConfig, ImageRef, Manifest, ManifestHead, Revision
from tagtrail.adapters.registry.media import Descriptor
from tagtrail.config import parse_config
from tagtrail.domain.policy import Running as PolicyRunning
from tagtrail.errors import ConfigError, RegistryNotFound
from tagtrail.features.build import Buildah, BuildOptions, BuildPlan, Docker
from tagtrail.reconcile.moved import MovedBase
from tagtrail.serve.controller.bases import BaseWatch, _batches
from tagtrail.serve.metrics import Metrics
from tagtrail.targets.base import AppState

DIGEST = "sha256:" + "ab" * 32
IMAGE = "image: ghcr.io/o/r/{app}\n"


def test_notify_is_the_default_and_rebuild_is_per_app() -> None:
    config = parse_config(IMAGE + "base_images:\n  apps: {web: rebuild}\n  local: {}\n")
    assert config.base_images.on_change_of("web") == "rebuild"
    assert config.base_images.on_change_of("api") == "notify"
    assert parse_config(IMAGE).base_images.interval is not None  # on by default: notify only


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("base_images:\n  on_change: rebuild\n", "rebuild needs a way to build"),
        ("base_images:\n  apps: {web: rebuild}\n", "rebuild needs a way to build"),
        (
            "base_images:\n  local: {}\n  github: {repository: o/r}\n",
            "set one of base_images.github and base_images.local",
        ),
        ("base_images:\n  github: {repository: 'not a repo'}\n", "base_images.github.repository"),
        ("base_images:\n  on_change: deploy\n", "base_images.on_change"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_loading(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(IMAGE + section, "tagtrail.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("tagtrail.yaml:")


def plan(base: ResolvedBase | None) -> BuildPlan:
    app = App("web", "apps/web", "apps/web/Dockerfile", "ghcr.io/o/r/web")
    return BuildPlan(app, "main.1.abc", {"org.opencontainers.image.title": "web"}, base=base)


def resolved(*, pinned: bool = False, insecure: bool = False) -> ResolvedBase:
    return ResolvedBase("python:3.12-slim", Recorded(base_name("python:3.12-slim"), DIGEST), pinned, insecure)


@pytest.mark.parametrize("builder", [Docker(), Buildah()])
def test_a_build_records_its_base_and_uses_that_digest(builder: Docker | Buildah, tmp_path: Path) -> None:
    command = builder.commands(plan(resolved()), tmp_path, BuildOptions(), tmp_path).build
    pairs = list(itertools.pairwise(command))
    name = "org.opencontainers.image.base.name=docker.io/library/python:3.12-slim"
    digest = f"org.opencontainers.image.base.digest={DIGEST}"
    for flag in ("--label", "--annotation"):
        assert (flag, name) in pairs
        assert (flag, digest) in pairs
    context = f"python:3.12-slim=docker-image://docker.io/library/python@{DIGEST}"
    assert ("--build-context", context) in pairs
    assert "--tls-verify=false" not in command


def test_a_pinned_base_needs_no_context_and_scratch_records_nothing(tmp_path: Path) -> None:
    pinned = Buildah().commands(plan(resolved(pinned=True)), tmp_path, BuildOptions(), tmp_path).build
    assert "--build-context" not in pinned
    assert "--annotation" in pinned
    scratch = Buildah().commands(plan(None), tmp_path, BuildOptions(), tmp_path).build
    annotated = [value for flag, value in itertools.pairwise(scratch) if flag == "--annotation"]
    assert annotated == ["org.opencontainers.image.title=web"]  # the plan's own labels, no base
    assert not any("image.base" in arg for arg in scratch)


def test_a_base_on_a_plain_http_registry_is_pulled_so(tmp_path: Path) -> None:
    command = Buildah().commands(plan(resolved(insecure=True)), tmp_path, BuildOptions(), tmp_path).build
    assert "--tls-verify=false" in command


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("python:3.12-slim", "docker.io/library/python:3.12-slim"),
        ("gcr.io/distroless/static", "gcr.io/distroless/static:latest"),
        (f"python@{DIGEST}", "docker.io/library/python"),
        (f"127.0.0.1:5000/base:1@{DIGEST}", "127.0.0.1:5000/base:1"),
    ],
)
def test_the_recorded_name_is_a_full_reference_with_its_tag(image: str, name: str) -> None:
    assert base_name(image) == name


@pytest.mark.parametrize(
    ("row", "moved"),
    [
        (AppBase("a", "r", "b", used=DIGEST, current=DIGEST), False),
        (AppBase("a", "r", "b", used=DIGEST, current="sha256:" + "cd" * 32), True),
        (AppBase("a", "r", "b", used=None, current=DIGEST), None),  # no record: cannot tell
        (AppBase("a", "r", "b", used=DIGEST, current=None), None),  # the base could not be read
        (AppBase("a", "r", "b", used=DIGEST, current="sha256:" + "cd" * 32, pinned=True), False),
        (AppBase("a", "r", None, scratch=True), False),  # FROM scratch: nothing to move
    ],
)
def test_moved(row: AppBase, moved: bool | None) -> None:
    assert row.moved is moved
    assert row.as_json()["moved"] is moved


def test_rebuilds_are_one_workflow_run_or_one_local_build_per_running_commit() -> None:
    rows = [AppBase("web", None, commit="abc"), AppBase("api", None, commit="abc"), AppBase("db", None)]
    assert _batches(rows, github=False) == [(["api", "web"], "abc"), (["db"], None)]
    assert _batches(rows, github=True) == [(["api", "db", "web"], None)]


def test_a_ledger_that_cannot_be_written_claims_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    ledger = Ledger(tmp_path / "file" / "decisions.sqlite")
    assert ledger.claim("web", DIGEST, "local") is False
    ledger.release("web", DIGEST)  # a warning, no raise
    working = Ledger(tmp_path / "decisions.sqlite")
    assert (working.claim("web", DIGEST, "local"), working.claim("web", DIGEST, "local")) == (True, False)
    working.release("web", DIGEST)
    assert working.claim("web", DIGEST, "github") is True


class FakeRegistry:
    """Answers a check's reads from dicts, recording them (the real registry's counts: the benchmark).
    `labels` by image digest are in its config; `annotations` by image digest in its manifest."""

    def __init__(
        self,
        labels: dict[str, dict[str, str]],
        heads: dict[str, str | Exception],
        annotations: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.labels, self.heads, self.annotations = labels, heads, annotations or {}
        self.asked: list[str] = []

    async def head(self, ref: ImageRef) -> ManifestHead:
        self.asked.append(f"HEAD {ref}")
        answer = self.heads[str(ref)]
        if isinstance(answer, Exception):
            raise answer
        return ManifestHead(answer, "application/vnd.oci.image.index.v1+json", None)

    async def manifest(self, ref: ImageRef) -> Manifest:
        self.asked.append(f"GET manifest {ref.digest}")
        digest = ref.digest or ""
        raw = json.dumps({"schemaVersion": 2, "annotations": self.annotations.get(digest, {})}).encode()
        config = Descriptor("application/vnd.oci.image.config.v1+json", f"config-of-{digest}", 1)
        return Manifest("application/vnd.oci.image.manifest.v1+json", digest, raw, config)

    async def blob(self, ref: ImageRef, digest: str) -> bytes:
        self.asked.append(f"GET blob {digest}")
        labels = self.labels.get(digest.removeprefix("config-of-"), {})
        return json.dumps({"os": "linux", "architecture": "amd64", "config": {"Labels": labels}}).encode()

    async def image_config(self, ref: ImageRef) -> ImageConfig:
        self.asked.append(f"GET config {ref}")
        return ImageConfig(ref.digest or "", None, "linux", "amd64", {})


def _running(app: str, digest: str) -> Running:
    return Running(app, f"r.example/{app}", "main.1", digest, f"apps/{app}/Dockerfile")


def test_a_base_that_cannot_be_read_leaves_its_apps_unknown_and_the_others_checked() -> None:
    one, two = "r.example/one:1", "r.example/two:1"
    digests = {n: f"sha256:{n * 64}" for n in "abcd"}
    registry = FakeRegistry(
        {
            digests["a"]: Recorded(one, DIGEST).labels(),
            digests["b"]: Recorded(one, DIGEST).labels(),
            digests["c"]: Recorded(two, DIGEST).labels(),
        },
        {one: DIGEST, two: RegistryNotFound("r.example", "two", "no such tag")},
    )
    apps = [_running("x", digests["a"]), _running("y", digests["b"]), _running("z", digests["c"])]
    rows = {r.app: r for r in asyncio.run(check(registry, apps))}
    assert [a for a in registry.asked if a.startswith("HEAD")] == [f"HEAD {one}", f"HEAD {two}"]
    assert (rows["x"].moved, rows["y"].moved, rows["z"].moved) == (False, False, None)
    assert "no such tag" in (rows["z"].problem or "")


def test_a_bug_is_not_taken_for_a_registry_answer() -> None:
    registry = FakeRegistry(
        {DIGEST: Recorded("r.example/one:1", DIGEST).labels()}, {"r.example/one:1": KeyError("x")}
    )
    with pytest.raises(KeyError):
        asyncio.run(check(registry, [_running("x", DIGEST)]))


def test_annotations_a_builder_wrote_are_read_without_the_config() -> None:
    """buildah and podman annotate every image with its base themselves: the manifest is enough."""
    image = "sha256:" + "e" * 64
    registry = FakeRegistry(
        {}, {"r.example/one:1": DIGEST}, {image: Recorded("r.example/one:1", DIGEST).labels()}
    )
    [row] = asyncio.run(check(registry, [_running("x", image)]))
    assert (row.base, row.used, row.moved, row.source) == ("r.example/one:1", DIGEST, False, "annotations")
    assert registry.asked == [f"GET manifest {image}", "HEAD r.example/one:1"]
    memory = Memory()
    asyncio.run(check(registry, [_running("x", image)], memory=memory))
    registry.asked.clear()
    asyncio.run(check(registry, [_running("x", image)], memory=memory))
    assert registry.asked == ["HEAD r.example/one:1"]  # what cannot change is remembered


@pytest.mark.parametrize(("interval", "first"), [("1h", 30.0), ("10s", 10.0), (None, None)])
def test_the_first_check_waits_for_serves_first_reconcile(interval: str | None, first: float | None) -> None:
    """At most 30 s after start (at most one interval); then one interval after each check."""
    now = [1000.0]
    watch = BaseWatch(Metrics(), lambda: Notifier([]), clock=lambda: now[0])
    text = IMAGE + (
        "base_images:\n  interval: null\n" if interval is None else f"base_images:\n  interval: {interval}\n"
    )
    reconciler = SimpleNamespace(project=SimpleNamespace(config=parse_config(text)))
    assert watch.wait(reconciler) == first  # type: ignore[arg-type]
    if first is not None:
        now[0] += 5
        assert watch.wait(reconciler) == first - 5  # type: ignore[arg-type]


def test_a_rebuild_is_on_a_moved_base_when_the_two_builds_record_different_bases(tmp_path: Path) -> None:
    """A reconcile's question for a winner that is the running code rebuilt: the winner's base comes from its
    own revision read, so a winner that records none costs no read, and the running image's record is
    read once per digest. A rebuild on the base the running build used is not a base-image rebuild, even
    where the base's tag has moved since (the winner does not carry the new base)."""
    config = parse_config(IMAGE)
    ran, first, second = "sha256:" + "1" * 64, "sha256:" + "a" * 64, "sha256:" + "b" * 64
    registry = FakeRegistry({}, {}, {ran: Recorded("r.example/base:1", first).labels()})
    moved = MovedBase(registry, config, tmp_path, Matcher.from_config(config))
    state = AppState("web", (), PolicyRunning("main.1", ran))

    def winner(base: str | None) -> Revision:
        return Revision(
            "sha256:" + "f" * 64, "c0ffee", "annotation", ("r.example/base:1", base) if base else None
        )

    assert asyncio.run(moved(state, winner(None))) is False  # FROM scratch, or recorded nowhere
    assert registry.asked == []
    assert asyncio.run(moved(state, winner(second))) is True
    assert asyncio.run(moved(state, winner(first))) is False
    assert registry.asked == [f"GET manifest {ran}"]  # the running image's record, read once
