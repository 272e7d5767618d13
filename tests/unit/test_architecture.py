"""docs/architecture.md stays true: its layers are the import-linter contract's, and every module it
names exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _contract_layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    return [{name.strip() for name in layer.split("|")} for layer in layers]


def _documented_layers() -> list[set[str]]:
    block = DOC.split("<!-- layers -->", 1)[1].split("<!-- /layers -->", 1)[0]
    return [
        set(re.findall(r"`(tagtrail[\w.]*)`", line)) for line in block.splitlines() if line.startswith("- ")
    ]


def test_the_documented_layers_are_the_checked_ones() -> None:
    assert _documented_layers() == _contract_layers()


def test_every_module_the_page_names_exists() -> None:
    src = ROOT / "src" / "tagtrail"
    table = DOC.split("## The modules", 1)[1].split("## Layers", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+/|[a-z_]+\.py)` \| (.*)$", table, re.MULTILINE)
    assert len(rows) >= 10
    for module, job in rows:
        assert (src / module).exists(), f"docs/architecture.md names {module}, not in src/tagtrail"
        if module.endswith("/"):
            for name in re.findall(r"`([a-z_]+\.py)`", job):
                assert (src / module / name).exists(), f"docs/architecture.md names {module}{name}"


def test_every_module_the_walkthroughs_name_exists() -> None:
    for title in ("## Adding a target",):
        section = DOC.split(title, 1)[1].split("\n## ", 1)[0]
        named = re.findall(r"`((?:tests/[\w/]+|[a-z_]+)/[a-z_]+\.py)`", section)
        assert named, f"{title} names no module"
        for path in named:
            found = ROOT / path if path.startswith("tests/") else ROOT / "src" / "tagtrail" / path
            assert found.exists(), f"docs/architecture.md's {title[3:]} names {path}, which does not exist"
