"""Files tagtrail writes for the user (CI workflows, dependabot.yml), rewritten only when that is safe.

Each carries a header line with the digest of what tagtrail wrote. Re-running on an unchanged repository
rewrites nothing; a file whose content no longer matches its digest was edited by hand and is not
overwritten without `force` (the diff is shown instead), nor is a file tagtrail did not write.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tagtrail.errors import TagtrailError

_MARK = "# tagtrail-digest: "

Outcome = Literal["created", "updated", "unchanged", "refused"]


@dataclass(frozen=True)
class WriteResult:
    path: Path
    outcome: Outcome
    diff: str = ""


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def render(header: str, body: str) -> str:
    """The file as written: header comment lines, the digest line, then the body. The digest covers
    everything but its own line, so an edit anywhere (a comment too) is an edit."""
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return f"{lines}{_MARK}{_digest(lines + body)}\n{body}"


def _untouched(text: str) -> bool | None:
    """True when `text` is exactly as tagtrail wrote it, False when edited since, None when not ours."""
    lines = text.splitlines(keepends=True)
    marks = [i for i, line in enumerate(lines) if line.startswith(_MARK)]
    if not marks:
        return None
    recorded = lines[marks[0]][len(_MARK) :].strip()
    rest = "".join(lines[: marks[0]] + lines[marks[0] + 1 :])
    return recorded == _digest(rest)


def write(path: Path, content: str, *, force: bool = False) -> WriteResult:
    """Write `content` to `path` unless that would lose a hand edit; atomically (no partial file)."""
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise TagtrailError(f"cannot read {path}: {exc.strerror}") from None
    if existing == content:
        return WriteResult(path, "unchanged")
    if existing is not None and not force and not _untouched(existing):
        diff = "".join(
            difflib.unified_diff(
                existing.splitlines(keepends=True),
                content.splitlines(keepends=True),
                fromfile=f"{path} (now)",
                tofile=f"{path} (tagtrail would write)",
            )
        )
        return WriteResult(path, "refused", diff)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise TagtrailError(f"cannot write {path}: {exc.strerror}") from None
    return WriteResult(path, "created" if existing is None else "updated")
