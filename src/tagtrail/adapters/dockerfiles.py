"""Which image a Dockerfile builds on: the final stage's `FROM`, followed through stage names, with `ARG`s
before the first `FROM` expanded (their defaults, overridden by build arguments) as BuildKit expands them.

The lines are split by BuildKit's own parser (the PyPI package `dockerfile` wraps it), so parser directives
(`# escape=`), line continuations and heredocs are read exactly as a build reads them; a heredoc that holds
the word FROM is never taken for an instruction. What is done here is what BuildKit does after parsing:
stages, meta `ARG`s, variable expansion in `FROM`, and the base of the last stage.

A Dockerfile that cannot be read raises DockerfileError with one line, `file:line: what is wrong`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from tagtrail.errors import TagtrailError

if TYPE_CHECKING:
    import dockerfile

SCRATCH = "scratch"
# ARGs BuildKit defines for every FROM without an ARG line (their values are the builder's platform)
PLATFORM_ARGS = frozenset(
    f"{side}{part}" for side in ("BUILD", "TARGET") for part in ("PLATFORM", "OS", "ARCH", "VARIANT")
)
_VARIABLE = re.compile(
    r"\\\$|\$(?:\{(?P<braced>[A-Za-z_]\w*)(?P<op>:?[-+])?(?P<word>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))"
)
_QUOTED = re.compile(r"""'[^']*'?|"(?:[^"\\]|\\.)*"?|[^'"]+""")
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


class DockerfileError(TagtrailError):
    """A Dockerfile cannot be read, or names no base image tagtrail can follow."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}{f':{line}' if line else ''}: {message}")


@dataclass(frozen=True)
class Stage:
    """One `FROM`: what it names (variables expanded), its stage name and where it is."""

    base: str
    name: str | None
    line: int
    platform: str | None = None


@dataclass(frozen=True)
class Base:
    """The image the final stage builds on. `image` is None for `FROM scratch`; `via` lists the stage names
    followed to reach it; `digest` is set when the Dockerfile pins it (`name@sha256:…`)."""

    image: str | None
    line: int
    via: tuple[str, ...] = ()
    platform: str | None = None

    @property
    def digest(self) -> str | None:
        found = _DIGEST.search(self.image or "")
        return found[1] if found else None

    @property
    def pinned(self) -> bool:
        """The Dockerfile names the base by digest: only a change of the Dockerfile (a Dependabot pull
        request) moves it, never a republished tag."""
        return self.digest is not None


def read(path: Path, build_args: Mapping[str, str] | None = None, *, shown: str | None = None) -> Base:
    """The base of the Dockerfile at `path` (`shown` is the name used in errors)."""
    name = shown or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DockerfileError(name, None, f"cannot be read: {exc.strerror}") from None
    return final_base(decode(data, name), name, build_args)


def decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DockerfileError(path, line, "is not UTF-8 text") from None


def final_base(text: str, path: str, build_args: Mapping[str, str] | None = None) -> Base:
    """The base image of the last stage of a Dockerfile's text."""
    found = stages(text, path, build_args)
    last = found[-1]
    by_name = {s.name: s for s in found if s.name}
    via: list[str] = []
    stage = last
    while stage.base.lower() in by_name and by_name[stage.base.lower()].line < stage.line:
        via.append(stage.base.lower())
        stage = by_name[stage.base.lower()]
    if stage.base.lower() == SCRATCH:
        return Base(None, stage.line, tuple(via), stage.platform)
    return Base(stage.base, stage.line, tuple(via), stage.platform)


def stages(text: str, path: str, build_args: Mapping[str, str] | None = None) -> list[Stage]:
    """Every stage's `FROM`, in order, its image name expanded with the meta ARGs."""
    parser = _parser(path)
    try:
        commands = parser.parse_string(text)
    except parser.GoParseError as exc:
        raise DockerfileError(path, _locate(str(exc), text), str(exc)) from None
    meta: dict[str, str] = {}
    given = dict(build_args or {})
    found: list[Stage] = []
    for command in commands:
        if command.cmd.upper() == "ARG" and not found:
            for item in command.value:
                key, eq, default = item.partition("=")
                if not re.fullmatch(r"[A-Za-z_]\w*", key):
                    raise DockerfileError(path, command.start_line, f"ARG '{key}' is not a variable name")
                value = given.get(key, _expand(default, meta) if eq else None)
                if value is not None:
                    meta[key] = value
        elif command.cmd.upper() == "FROM":
            found.append(_stage(command, meta, given, path))
    if not found:
        raise DockerfileError(path, _first_instruction(commands), "has no FROM instruction")
    return found


def _stage(
    command: dockerfile.Command, meta: Mapping[str, str], given: Mapping[str, str], path: str
) -> Stage:
    line = command.start_line
    words = list(command.value)
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise DockerfileError(path, line, f"'{command.original}' is not FROM IMAGE [AS NAME]")
    scope = {**{k: given[k] for k in PLATFORM_ARGS if k in given}, **meta}
    image = _expand(words[0], scope)
    if not image:
        raise DockerfileError(
            path, line, f"'{words[0]}' expands to nothing: give the ARG a default or --build-arg"
        )
    platform = None
    for flag in command.flags:
        key, _, value = flag.partition("=")
        if key.lower() == "--platform":
            platform = _expand(value, scope) or value
    name = words[2].lower() if len(words) == 3 else None
    return Stage(image, name, line, platform)


def _expand(word: str, scope: Mapping[str, str]) -> str:
    """`$X`, `${X}`, `${X:-default}`, `${X-default}`, `${X:+alt}`, `${X+alt}`: BuildKit's forms; an unset
    variable is empty, `\\$` is a dollar sign; quotes go, and nothing in single quotes is expanded."""
    parts = []
    for piece in _QUOTED.findall(word):
        if piece.startswith("'"):
            parts.append(piece[1:].removesuffix("'"))
        elif piece.startswith('"'):
            parts.append(_variables(piece[1:].removesuffix('"'), scope))
        else:
            parts.append(_variables(piece, scope))
    return "".join(parts)


def _variables(word: str, scope: Mapping[str, str]) -> str:

    def one(match: re.Match[str]) -> str:
        if match[0] == "\\$":
            return "$"
        key = match["braced"] or match["bare"]
        value, op, word = scope.get(key), match["op"], match["word"] or ""
        if op is None:
            return value or ""
        empty_counts = op.startswith(":")
        present = value is not None and (bool(value) or not empty_counts)
        if op.endswith("-"):
            return value if present and value is not None else _expand(word, scope)
        return _expand(word, scope) if present else ""

    return _VARIABLE.sub(one, word)


def _parser(path: str) -> ModuleType:
    """BuildKit's parser (the `dockerfile` package). Its wheels are built for x86-64 only, so elsewhere (a
    Raspberry Pi) tagtrail installs without it: the base is then read from the image's annotations, which
    `tagtrail build` and the generated workflow record, and a Dockerfile is not read here."""
    try:
        import dockerfile  # noqa: PLC0415 (optional: see above)
    except ImportError:
        raise DockerfileError(
            path,
            None,
            "cannot be read on this machine: the `dockerfile` package (BuildKit's parser) has no"
            " build for it; the base is read from the image's annotations instead",
        ) from None
    module: ModuleType = dockerfile
    return module


def _first_instruction(commands: tuple[dockerfile.Command, ...]) -> int | None:
    return commands[0].start_line if commands else None


def _locate(message: str, text: str) -> int | None:
    """BuildKit's parser names no line for some errors: find the one it means."""
    lines = text.splitlines()
    if "heredoc" in message:
        starts = [n for n, line in enumerate(lines, 1) if "<<" in line]
        return starts[-1] if starts else None
    if "escape token" in message:
        return next((n for n, line in enumerate(lines, 1) if re.match(r"#\s*escape\s*=", line, re.I)), None)
    if "max allowed size" in message:
        return next((n for n, line in enumerate(lines, 1) if len(line) > 65535), None)
    if "no instructions" in message:
        return len(lines) or 1
    return None
