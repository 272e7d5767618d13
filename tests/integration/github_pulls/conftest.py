"""Fixtures of the GitHub stand-in's own tests: an API client with the write token, and a clone of the
stand-in's bare repository (its `origin`), as tagtrail's work copy is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.git import git
from bench.githubpulls import GitHubPulls


@pytest.fixture
def api(github_pulls: GitHubPulls) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {github_pulls.token}", "Accept": "application/vnd.github+json"}
    with httpx.Client(base_url=github_pulls.api_url, headers=headers) as client:
        yield client


@pytest.fixture
def clone(github_pulls: GitHubPulls, tmp_path: Path) -> Path:
    """A clone whose origin is the stand-in's bare repository, as tagtrail's work copy is."""
    git(tmp_path, "clone", "-q", str(github_pulls.remote), "clone")
    return tmp_path / "clone"
