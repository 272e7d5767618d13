"""`tagtrail build`: build (and push) app images from a laptop, named and labelled the way CI names them.

The tag comes from the scheme and git HEAD; the OCI labels say which commit, which repository, when, which
version and which app. A work tree with uncommitted or untracked files in an app's inputs is refused, so
untracked code never reaches production; `allow_dirty` builds anyway, with a `-dirty` tag that the deploy
policy never treats as eligible. The builder is docker buildx, podman or buildah, whichever works here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from tagtrail.adapters.apps import App
from tagtrail.adapters.baseimages import ResolvedBase
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import CredentialResolver, ImageRef
from tagtrail.config import Config
from tagtrail.domain.scheme import MAX_TAG_LENGTH
from tagtrail.domain.scheme.tags import DIRTY_SUFFIX
from tagtrail.errors import GitError, TagtrailError

BuilderName = Literal["docker", "podman", "buildah"]
BUILDERS: tuple[BuilderName, ...] = ("docker", "podman", "buildah")


@dataclass(frozen=True)
class BuildPlan:
    """What one app's build will be: where it is, the image reference and the labels it gets."""

    app: App
    tag: str
    labels: dict[str, str]
    dirty: list[str] = field(default_factory=list)
    base: ResolvedBase | None = None  # the final stage's base, resolved to a digest (None: scratch)

    @property
    def reference(self) -> str:
        return f"{self.app.image}:{self.tag}"


@dataclass
class BuildResult:
    app: str
    reference: str
    ok: bool
    pushed: bool = False
    digest: str | None = None
    error: str | None = None
    log: Path | None = None


@dataclass(frozen=True)
class Commands:
    """The commands one builder runs for one image: build, then push (when asked)."""

    build: list[str]
    push: list[str] | None
    digest_file: Path | None


class Builder(Protocol):
    name: BuilderName

    def available(self) -> bool: ...

    def commands(self, plan: BuildPlan, root: Path, options: BuildOptions, scratch: Path) -> Commands: ...


@dataclass(frozen=True)
class BuildOptions:
    push: bool = False
    platforms: tuple[str, ...] = ()
    insecure: bool = False  # plain HTTP / unverified TLS to the registry (registries.<host>.insecure)
    auth_file: Path | None = None
    build_args: tuple[tuple[str, str], ...] = ()  # --build-arg KEY=VALUE, in order


def _arg_flags(options: BuildOptions) -> list[str]:
    return [arg for key, value in options.build_args for arg in ("--build-arg", f"{key}={value}")]


def _works(*command: str) -> bool:
    if shutil.which(command[0]) is None:
        return False
    try:
        return subprocess.run(command, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _label_flags(plan: BuildPlan) -> list[str]:
    """The OCI labels and the base, each as a label and as a manifest annotation (a deploy reads the
    revision from the manifest without fetching the config, and no base image can pass an annotation
    on), the base pinned through a build context so the digest recorded is the digest used, however the
    tag moves while the builder pulls."""
    recorded = dict(plan.labels)
    if plan.base is not None:
        recorded |= plan.base.recorded.labels()
    flags = [
        arg
        for key, value in recorded.items()
        for arg in ("--label", f"{key}={value}", "--annotation", f"{key}={value}")
    ]
    if plan.base is not None and not plan.base.pinned:
        flags += ["--build-context", plan.base.build_context]
    return flags


class Docker:
    name: BuilderName = "docker"

    def available(self) -> bool:
        # The docker CLI can be installed without an engine to talk to: ask the engine.
        return _works("docker", "buildx", "version") and _works("docker", "info")

    def commands(self, plan: BuildPlan, root: Path, options: BuildOptions, scratch: Path) -> Commands:
        metadata = scratch / "metadata.json"
        build = [
            "docker",
            "buildx",
            "build",
            "--file",
            str(root / plan.app.dockerfile),
            "--tag",
            plan.reference,
            *_label_flags(plan),
            *_arg_flags(options),
            "--metadata-file",
            str(metadata),
        ]
        if options.platforms:
            build += ["--platform", ",".join(options.platforms)]
        build += ["--push"] if options.push else (["--load"] if len(options.platforms) <= 1 else [])
        return Commands([*build, str(root / plan.app.context)], None, metadata)


class _ContainersTool:
    """podman and buildah take the same flags for what tagtrail needs."""

    name: BuilderName
    storage: ClassVar[list[str]] = []

    def commands(self, plan: BuildPlan, root: Path, options: BuildOptions, scratch: Path) -> Commands:
        multi = len(options.platforms) > 1
        build = [
            self.name,
            *self._build_verb(),
            *self.storage,
            "--file",
            str(root / plan.app.dockerfile),
            *(["--manifest"] if multi else ["--tag"]),
            plan.reference,
            *_label_flags(plan),
            *_arg_flags(options),
            *(["--tls-verify=false"] if plan.base is not None and plan.base.insecure else []),
        ]
        if options.platforms:
            build += ["--platform", ",".join(options.platforms)]
        build.append(str(root / plan.app.context))
        if not options.push:
            return Commands(build, None, None)
        digest = scratch / "digest"
        push = [
            self.name,
            *(["manifest", "push", "--all"] if multi else ["push"]),
            *self.storage,
            "--digestfile",
            str(digest),
        ]
        if options.insecure:
            push.append("--tls-verify=false")
        if options.auth_file is not None:
            push += ["--authfile", str(options.auth_file)]
        return Commands(build, [*push, plan.reference, f"docker://{plan.reference}"], digest)

    def _build_verb(self) -> list[str]:
        return ["build"]


class Podman(_ContainersTool):
    name: BuilderName = "podman"

    def available(self) -> bool:
        return _works("podman", "info")


class Buildah(_ContainersTool):
    name: BuilderName = "buildah"
    # Without a container runtime (as in many CI sandboxes), chroot isolation and the vfs driver work.
    storage: ClassVar[list[str]] = ["--storage-driver", "vfs"]

    def available(self) -> bool:
        return _works("buildah", "version")

    def _build_verb(self) -> list[str]:
        return ["bud", "--isolation", "chroot"]


def find_builder(preferred: BuilderName | None = None) -> Builder:
    """The builder asked for, or the first that works here: docker buildx, then podman, then buildah."""
    known: dict[BuilderName, Builder] = {"docker": Docker(), "podman": Podman(), "buildah": Buildah()}
    if preferred is not None:
        builder = known[preferred]
        if not builder.available():
            raise TagtrailError(f"{preferred} cannot build here (is it installed, and its engine running?)")
        return builder
    for name in BUILDERS:
        if known[name].available():
            return known[name]
    raise TagtrailError(
        "no builder works here: install docker (with buildx and a running engine), podman or buildah"
    )


def source_url(remote: str | None) -> str | None:
    """The web address of a git remote, as org.opencontainers.image.source wants it (no credentials)."""
    if not remote:
        return None
    scp = re.fullmatch(r"(?:[\w.-]+@)?([\w.-]+):(?!//)(.+?)(?:\.git)?/?", remote)
    if scp and "://" not in remote:
        return f"https://{scp[1]}/{scp[2]}"
    match = re.fullmatch(r"(?:https?|ssh|git)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+?)(?:\.git)?/?", remote)
    if match:
        return f"https://{match[1]}/{match[2]}"
    return None


def plan_builds(
    repo: GitRepo,
    config: Config,
    apps: Sequence[App],
    *,
    allow_dirty: bool,
    branch: str | None,
    now: datetime,
) -> list[BuildPlan]:
    """The tag and labels of each app's build, or GitError naming the files that make the work tree dirty."""
    branch = branch or repo.current_branch() or _ci_branch()
    if branch is None:
        raise GitError("HEAD is detached, so there is no branch to put in the tag; check out a branch")
    sha = repo.head_sha()
    commit_time = repo.commit_time(sha) if config.tag_scheme.time_source == "commit_date" else None
    tag = config.tag_scheme.format(branch=branch, sha=sha, time=now, commit_time=commit_time)
    source = source_url(repo.remote_url())
    plans = []
    refused = []
    for app in apps:
        dirty = repo.dirty_paths([app.context, app.dockerfile, *(f":(glob){p}" for p in app.inputs)])
        if dirty and not allow_dirty:
            refused.append((app, dirty))
            continue
        app_tag = tag + (DIRTY_SUFFIX if dirty else "")
        if len(app_tag) > MAX_TAG_LENGTH:
            raise TagtrailError(
                f"'{app_tag}' is longer than {MAX_TAG_LENGTH} characters; commit instead of --allow-dirty"
            )
        labels = {
            "org.opencontainers.image.revision": sha,
            "org.opencontainers.image.created": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "org.opencontainers.image.version": app_tag,
            "org.opencontainers.image.title": app.name,
        }
        if source:
            labels["org.opencontainers.image.source"] = source
        plans.append(BuildPlan(app, app_tag, labels, dirty))
    if refused:
        listing = "; ".join(
            f"{app.name}: {', '.join(files[:5])}{' …' if len(files) > 5 else ''}" for app, files in refused
        )
        raise GitError(
            f"uncommitted or untracked files in the inputs of {listing}. Commit them (untracked code never"
            " reaches production), or pass --allow-dirty: the tag then ends in -dirty and is never deployed"
        )
    return plans


def _ci_branch() -> str | None:
    ref = os.environ.get("GITHUB_REF", "")
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def registry_auth_file(credentials: CredentialResolver, image: str, folder: Path) -> Path | None:
    """A containers auth file holding the credentials tagtrail resolves for the image's registry (0600,
    in a private folder), so builders push with the same credentials tagtrail reads with."""
    registry = ImageRef.parse(image).registry
    creds = credentials.resolve(registry)
    if creds is None or not creds.password:
        return None
    path = folder / "auth.json"
    pair = base64.b64encode(f"{creds.username}:{creds.password.reveal()}".encode()).decode()
    path.touch(mode=0o600)
    path.write_text(json.dumps({"auths": {registry: {"auth": pair}}}))
    return path


def build_one(
    builder: Builder, root: Path, plan: BuildPlan, options: BuildOptions, logs: Path
) -> BuildResult:
    """Build (and push) one app, its tool's output kept in a log file; failures are results, not raises,
    so one failing app does not hide the others'."""
    scratch = Path(tempfile.mkdtemp(prefix=f"{plan.app.name}-", dir=logs))
    log = logs / f"{plan.app.name}.log"
    commands = builder.commands(plan, root, options, scratch)
    result = BuildResult(plan.app.name, plan.reference, ok=False, log=log)
    with log.open("w") as out:
        for step in [commands.build] + ([commands.push] if commands.push else []):
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            try:
                code = subprocess.run(
                    step, stdout=out, stderr=subprocess.STDOUT, cwd=root, check=False
                ).returncode
            except OSError as exc:
                result.error = f"cannot run {step[0]}: {exc.strerror}"
                return result
            if code != 0:
                result.error = f"{step[0]} {step[1]} exited {code}"
                return result
    result.ok = True
    result.pushed = options.push
    result.digest = _digest(commands.digest_file) if options.push else None
    return result


def _digest(path: Path | None) -> str | None:
    if path is None or not path.exists():
        return None
    text = path.read_text().strip()
    if text.startswith("{"):  # docker buildx --metadata-file
        found = json.loads(text).get("containerimage.digest")
        return str(found) if found else None
    return text or None
