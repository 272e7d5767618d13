"""docs/architecture.md stays true: its layers are the import-linter contracts', every module it names exists,
and the package's shape is the one it describes (a few layered groups at the top, small modules)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "tagtrail"
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"][
    "contracts"
]


def _contract_layers() -> dict[str, list[set[str]]]:
    """Each layers contract by its container ("" for the package's top)."""
    return {
        (contract.get("containers") or [""])[0]: [
            {name.strip() for name in layer.split("|")} for layer in contract["layers"]
        ]
        for contract in CONTRACTS
        if contract["type"] == "layers"
    }


def _documented_layers() -> dict[str, list[set[str]]]:
    blocks = re.findall(r"<!-- layers ?([\w.]*) -->\n(.*?)<!-- /layers -->", DOC, re.DOTALL)
    return {
        container: [
            set(re.findall(r"`([\w.]+)`", line)) for line in block.splitlines() if line.startswith("- ")
        ]
        for container, block in blocks
    }


def test_the_documented_layers_are_the_checked_ones() -> None:
    assert _documented_layers() == _contract_layers()


def test_every_module_the_page_names_exists() -> None:
    table = DOC.split("## The modules", 1)[1].split("## Layers", 1)[0]
    rows = re.findall(r"^\| `([a-z_/]+/|[a-z_/]+\.py)` \| (.*)$", table, re.MULTILINE)
    assert len(rows) >= 10
    for module, job in rows:
        assert (SRC / module).exists(), f"docs/architecture.md names {module}, not in src/tagtrail"
        if module.endswith("/"):
            for name in re.findall(r"`([a-z_]+\.py)`", job):
                assert (SRC / module / name).exists(), f"docs/architecture.md names {module}{name}"


def test_the_top_of_the_package_is_its_layers() -> None:
    """At most 14 entries, and every package among them is a layer of the top contract: a reader sees the
    layers in the tree itself."""
    entries = sorted(p.name for p in SRC.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 14, entries
    top = {name for layer in _contract_layers()[""] for name in layer}
    for name in entries:
        if (SRC / name).is_dir():
            assert f"tagtrail.{name}" in top, f"src/tagtrail/{name}/ is no layer of the import contract"


def test_modules_and_classes_stay_small() -> None:
    """No module over 400 lines, no class over 250: past that, a file or a class holds more than one job."""
    too_big = []
    for path in sorted(ROOT.glob("src/tagtrail*/**/*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        if text.count("\n") > 400:
            too_big.append(f"{where}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > 250:
                too_big.append(f"{where}: class {node.name}, {node.end_lineno - node.lineno + 1} lines")
    assert too_big == []


def test_every_module_the_walkthroughs_name_exists() -> None:
    for title in ("## Adding a target", "## Environments: lanes of projects"):
        section = DOC.split(title, 1)[1].split("\n## ", 1)[0]
        named = re.findall(r"`((?:tests/[\w/]+|[a-z_/]+)/[a-z_]+\.py)`", section)
        assert named, f"{title} names no module"
        for path in named:
            found = ROOT / path if path.startswith("tests/") else SRC / path
            assert found.exists(), f"docs/architecture.md's {title[3:]} names {path}, which does not exist"
