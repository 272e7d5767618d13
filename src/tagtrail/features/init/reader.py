"""The one way init reads a file of the repository it surveys, which may be hostile: a regular file whose real
path is inside the repository (a link to /dev/zero or to a file elsewhere is never followed), at most N bytes
actually read (st_size is 0 for a device, so it cannot be the cap), and YAML parsed only once the limits every
YAML tagtrail reads obeys (nesting depth, alias expansion; `config.guard`) pass. A file refused for one of
these reasons is remembered, once, to be said in one line; one missing, unreadable or not UTF-8 is simply not
there, as it would be for git."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import Node

from tagtrail.config import guard

TEXT_MAX_BYTES = 1024 * 1024  # a workflow, a Dockerfile or a Makefile
YAML_MAX_BYTES = 2 * 1024 * 1024  # a file that may deploy the apps: larger ones are data, not deploy files
LINK_OUT = "a link out of the repository"
NOT_REGULAR = "not a regular file"
LINK_LOOP = "a loop of links"
YAML_LIMIT = "YAML nesting or aliases over the limit"


@dataclass
class Reader:
    """Reads the files of the repository at `root`; `skipped` says which were refused, and why."""

    root: Path
    skipped: dict[str, str] = field(default_factory=dict)  # path → why, in the order met

    def __post_init__(self) -> None:
        self.root = self.root.resolve()

    def said(self) -> list[str]:
        return [f"skipped {path}: {why}" for path, why in self.skipped.items()]

    def text(self, path: str, max_bytes: int = TEXT_MAX_BYTES) -> str | None:
        """The file's text, or None when it is not there as a readable UTF-8 file or was refused."""
        try:
            real = (self.root / path).resolve()
        except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13)
            self._skip(path, LINK_LOOP)
            return None
        if not real.is_relative_to(self.root):
            self._skip(path, LINK_OUT)
            return None
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; the mode is checked on what was opened
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self._skip(path, NOT_REGULAR)
            return None
        with os.fdopen(fd, "rb") as handle:
            try:
                data = handle.read(max_bytes + 1)
            except OSError:
                return None
        if len(data) > max_bytes:
            self._skip(path, f"larger than {max_bytes // 1024} KiB")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def yaml_text(self, path: str, max_bytes: int) -> str | None:
        """The file's text once the YAML limits pass (it may still not be YAML: the caller parses it)."""
        text = self.text(path, max_bytes)
        if text is None:
            return None
        too_much = guard.check(text, max_bytes)
        if too_much is not None:
            line = f" at line {too_much.line}" if too_much.line else ""
            self._skip(path, f"{YAML_LIMIT} ({too_much.message}{line})")
            return None
        return text

    def document(self, path: str) -> object:
        """A workflow as ruamel.yaml's round-trip objects (with their lines), or None."""
        text = self.yaml_text(path, TEXT_MAX_BYTES)
        try:
            return None if text is None else YAML(typ="rt").load(text)
        except (YAMLError, RecursionError, AssertionError):  # AssertionError: `%YAML 1.20`
            return None  # not ours to judge; actionlint is

    def nodes(self, path: str) -> tuple[str, list[Node]] | None:
        """A file that may deploy the apps: its text and its documents' node trees, composed as the
        reference finder composes them (`guard.compose`), or None."""
        text = self.yaml_text(path, YAML_MAX_BYTES)
        if text is None:
            return None
        try:
            return text, guard.compose(text)
        except (YAMLError, RecursionError, AssertionError):  # AssertionError: `%YAML 1.20`
            return None  # a Helm template, or not YAML at all: nothing tagtrail could rewrite safely

    def _skip(self, path: str, why: str) -> None:
        self.skipped.setdefault(path, why)
