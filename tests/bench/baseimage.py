"""A base image the test publishes itself: built FROM scratch with buildah (one file copied in), pushed to
the test registry, and republished under the same tag with other content, as an upstream fix would be."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def buildah_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Containers storage of the test session's own, so builds never touch /var/lib/containers."""
    root = tmp_path_factory.mktemp("containers")
    conf = root / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n')
    return conf


def publish_base(reference: str, content: str, workdir: Path) -> str:
    """Build a tiny base holding /etc/base-release = `content`, push it as `reference` (plain HTTP), and
    return the pushed manifest's digest. The storage is CONTAINERS_STORAGE_CONF's (the test's own)."""
    context = workdir / f"base-{abs(hash((reference, content)))}"
    context.mkdir(parents=True, exist_ok=True)
    (context / "base-release").write_text(content)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY base-release /etc/base-release\n")
    digest = context / "digest"
    for command in (
        ["buildah", "bud", "--isolation", "chroot", "--storage-driver", "vfs", "-q", "-t", reference, "."],
        [
            "buildah",
            "push",
            "--storage-driver",
            "vfs",
            "--tls-verify=false",
            "-q",
            "--digestfile",
            str(digest),
            reference,
            f"docker://{reference}",
        ],
    ):
        result = subprocess.run(command, cwd=context, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return digest.read_text().strip()
