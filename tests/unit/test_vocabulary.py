"""One spelling per concept (issue 26): no two enums repeat a code, the commit trailers' names are written in
one module, and only the store opens SQLite (import-linter says the last)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from tagtrail.domain.policy import Reason
from tagtrail.domain.provenance import Refusal
from tagtrail.domain.reasons import REFUSALS

SRC = Path(__file__).resolve().parents[2] / "src" / "tagtrail"
# One word, two concepts: retention keeps a tag that is deployed, pinned or too young to delete, and a
# reconcile's outcome is deployed; neither is why the policy decided what it did.
HOMONYMS = {"deployed", "pinned", "too-young"}


def _enum_codes() -> dict[str, set[str]]:
    """Every string member of every enum class in src/tagtrail, by `module.Class`."""
    codes: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if not bases & {"Enum", "StrEnum"}:
                continue
            values = {
                stmt.value.value
                for stmt in node.body
                if isinstance(stmt, ast.Assign)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            }
            codes[f"{path.relative_to(SRC)}:{node.name}"] = values
    return codes


def test_no_two_enums_repeat_a_code() -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for enum, values in _enum_codes().items():
        for value in values:
            owners[value].append(enum)
    assert "domain/reasons.py:Reason" in _enum_codes()
    repeated = {code: where for code, where in owners.items() if len(where) > 1 and code not in HOMONYMS}
    assert repeated == {}


def test_the_refusals_are_a_subset_of_the_reasons() -> None:
    assert set(REFUSALS) < set(Reason)
    assert all(isinstance(Refusal("t", code, "").code, Reason) for code in REFUSALS)


def test_the_trailer_names_are_spelled_in_one_module() -> None:
    spelled = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".html", ".j2"}
        and re.search(r"Tagtrail-[A-Z]", path.read_text(encoding="utf-8"))
    }
    assert spelled == {"adapters/trailers.py"}
