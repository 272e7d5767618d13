"""tagtrail's own container image, built and run here without Docker Hub or a container runtime.

- A Debian bookworm base made with debootstrap (minbase, Python 3.11, pip, git, tini, and this machine's
  extra CA certificates so pip can reach PyPI through the same proxy the machine uses), imported as
  `localhost/tagtrail-ci-base:bookworm`. The rootfs, its tarball and the image storage are cached under
  CACHE (TAGTRAIL_CI_CACHE, else /var/cache/tagtrail-ci), so only the first run pays for debootstrap.
- The Dockerfile built with `--build-arg BASE=` that image, by buildah (chroot isolation, vfs storage).
- Its processes run as the image says (user, env, entrypoint) in a chroot of the image's rootfs mounted
  read-only, with only /var/lib/tagtrail, /home/tagtrail and /tmp writable, as deploy/kubernetes does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Read at import: the test bench's isolated_home fixture drops TAGTRAIL_* variables from the environment.
CACHE = Path(os.environ.get("TAGTRAIL_CI_CACHE", "/var/cache/tagtrail-ci"))
BASE = "localhost/tagtrail-ci-base:bookworm"
PACKAGES = "python3,python3-pip,python3-venv,git,openssh-client,ca-certificates,tini"
MIRROR = "http://deb.debian.org/debian"


def buildah(*args: str, capture: bool = True) -> str:
    storage = [
        f"--root={CACHE / 'containers/storage'}",
        f"--runroot={CACHE / 'containers/run'}",
        "--storage-driver=vfs",
    ]
    result = subprocess.run(["buildah", *storage, *args], capture_output=capture, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"[-6000:])
    return result.stdout.strip() if capture else ""


def base_image() -> str:
    """The base image's name, made (and cached) if it is not there yet."""
    if buildah("images", "--quiet", "--filter", f"reference={BASE}"):
        return BASE
    tarball = CACHE / "bookworm-base.tar"
    if not tarball.exists():
        rootfs = CACHE / "bookworm"
        if not rootfs.exists():
            partial = CACHE / "bookworm.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={PACKAGES}",
                    "bookworm",
                    str(partial),
                    MIRROR,
                ],
                check=True,
                capture_output=True,
            )
            partial.rename(rootfs)
        for ca in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
        subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True)
        partial_tar = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial_tar), "."], check=True
        )
        partial_tar.rename(tarball)
    container = buildah("from", "scratch")
    buildah("add", container, str(tarball), "/")
    # Debian's pip refuses to install into the system Python (PEP 668) unless told; the official image's
    # Python is its own, so the Dockerfile needs no such switch there.
    buildah("config", "--env", "PIP_BREAK_SYSTEM_PACKAGES=1", "--env", "LANG=C.UTF-8", container)
    buildah("commit", "--rm", container, BASE)
    return BASE


INPUTS = ("Dockerfile", "pyproject.toml", "README.md", "src", "deploy/entrypoint.sh")


def build(context: Path, repository: str) -> str:
    """The image of `context`, tagged with a digest of what the Dockerfile copies from it: built only when
    that changed, so a warm run with the same code builds nothing. Older test builds are removed (vfs keeps
    every layer as a full copy of the root filesystem)."""
    digest = hashlib.sha256()
    for name in INPUTS:
        for path in sorted([context / name] if (context / name).is_file() else (context / name).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    image = f"{repository}:test-{digest.hexdigest()[:16]}"
    if buildah("images", "--quiet", "--filter", f"reference={image}"):
        return image
    base = base_image()
    buildah("bud", "--isolation=chroot", f"--build-arg=BASE={base}", f"--tag={image}", str(context))
    for line in buildah(
        "images", "--format", "{{.Name}}:{{.Tag}}", "--filter", f"reference={repository}"
    ).split():
        if line != image:
            buildah("rmi", line)
    buildah("rmi", "--prune")
    return image


def inspect(image: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(buildah("inspect", "--type=image", image))["OCIv1"]["config"]
    return config


@dataclass
class Rootfs:
    """An image's files, mounted; `run` starts a process in them as the image would."""

    path: Path
    config: dict[str, Any]

    def command(
        self,
        args: Sequence[str],
        writable: dict[str, Path],
        env: dict[str, str],
        entrypoint: Sequence[str] | None = None,
    ) -> list[str]:
        """A command line that runs `args` (the entrypoint's arguments) chrooted into the rootfs mounted
        read-only, as the image's user, with its environment and working directory, and only `writable`
        (path in the image → folder here) and a fresh /tmp writable."""
        root = self.path
        mounts = [f"mount --bind {root} {root}", f"mount -o remount,bind,ro {root}"]
        mounts += [f"mount --bind {source} {root}{inside}" for inside, source in writable.items()]
        mounts += [f"mount -t tmpfs tmpfs {root}/tmp", f"mount -t proc proc {root}/proc"]
        user = self.config.get("User") or "0"
        variables = [*self.config.get("Env", []), *(f"{k}={v}" for k, v in env.items())]
        entry = [*(self.config.get("Entrypoint", []) if entrypoint is None else entrypoint), *args]
        inner = " ".join(
            [
                "exec chroot",
                f"--userspec={user}",
                str(root),
                "env -i",
                *(_quote(v) for v in variables),
                "sh -c",
                _quote(f'cd {self.config.get("WorkingDir") or "/"} && exec "$@"'),
                "sh",
                *(_quote(a) for a in entry),
            ]
        )
        return ["unshare", "--mount", "--propagation=private", "sh", "-ec", "; ".join([*mounts, inner])]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@contextmanager
def mounted(image: str) -> Iterator[Rootfs]:
    container = buildah("from", image)
    try:
        path = Path(buildah("mount", container))
        for inside in ("/srv/remote",):
            (path / inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
        yield Rootfs(path, inspect(image))
    finally:
        buildah("umount", container)
        buildah("rm", container)
