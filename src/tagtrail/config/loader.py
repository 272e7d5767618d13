"""Find, read and validate tagtrail.yaml, turning every problem into `file:line:column: field: message`."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from tagtrail.config import guard
from tagtrail.config.guard import CONFIG_MAX_BYTES
from tagtrail.config.model import Config
from tagtrail.errors import ConfigError, Problem

CONFIG_NAME = "tagtrail.yaml"
ENV_CONFIG = "TAGTRAIL_CONFIG"


def find_config(start: Path | None = None) -> Path:
    """tagtrail.yaml in `start` (default: the current folder) or the nearest parent holding one, never
    above the top of the git repository `start` is in: a config outside your repository is not yours."""
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            break
    raise ConfigError(
        [
            Problem(
                str(here),
                None,
                None,
                "",
                f"no {CONFIG_NAME} here or in any parent folder; pass --config PATH",
            )
        ]
    )


def load_config(path: Path) -> Config:
    """Read and validate one config file. Raises ConfigError listing every problem with its position."""
    shown = _display(path)
    try:
        size = path.stat().st_size
        if size > CONFIG_MAX_BYTES:  # refused before it is read
            raise ConfigError(
                [
                    Problem(
                        shown,
                        None,
                        None,
                        "",
                        f"the file is {size // 1024} KiB, over the limit of {CONFIG_MAX_BYTES // 1024} KiB",
                    )
                ]
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(shown, None, None, "", "file not found; pass --config PATH")]) from None
    except OSError as exc:
        raise ConfigError([Problem(shown, None, None, "", f"cannot read it: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            [
                Problem(
                    shown,
                    line,
                    column,
                    "",
                    f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                )
            ]
        ) from None
    return parse_config(text, shown)


def parse_config(text: str, path: str = CONFIG_NAME) -> Config:
    """Validate config text; `path` is only used in messages."""
    too_much = guard.check(text, CONFIG_MAX_BYTES)
    if too_much is not None:
        raise ConfigError(
            [Problem(path, too_much.line, None, "", f"{too_much.message}; tagtrail.yaml needs none of that")]
        )
    try:
        document = YAML(typ="rt").load(text)
    except ReaderError as exc:  # a character YAML does not allow: say where, not at which offset
        raise ConfigError([_bad_character(path, text, exc)]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        what = " ".join((exc.problem or exc.context or "invalid YAML").split())  # one line
        raise ConfigError([Problem(path, line, column, "", f"not valid YAML: {what}")]) from None
    except YAMLError as exc:
        raise ConfigError(
            [Problem(path, None, None, "", f"not valid YAML: {' '.join(str(exc).split())}")]
        ) from None
    except RecursionError:
        raise ConfigError([Problem(path, None, None, "", "nested too deeply to read")]) from None
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        # how ruamel.yaml's constructors fail on a value its tag cannot hold (`!!int x`, `!!bool x`, `!!set x`)
        # or on a mapping merged into itself (`a: &w {<<: *w}`)
        tagged = (
            "not valid YAML: a value its tag cannot hold (such as !!int x), or a mapping merged into itself"
        )
        raise ConfigError([Problem(path, None, None, "", tagged)]) from None
    except AssertionError:  # how ruamel.yaml refuses `%YAML 1.20`
        version = "not valid YAML: a %YAML directive of a version other than 1.1 or 1.2"
        raise ConfigError([Problem(path, None, None, "", version)]) from None
    if document is None:
        raise ConfigError([Problem(path, 1, 1, "", "the file is empty; it needs at least 'image:'")])
    if not isinstance(document, CommentedMap):
        raise ConfigError(
            [Problem(path, 1, 1, "", "the top level must be a mapping of keys such as 'scheme:'")]
        )
    try:
        config = Config.model_validate(_plain(document))
    except ValidationError as exc:
        problems = {_problem(path, document, error) for error in _relevant(document, exc.errors())}
        raise ConfigError(
            sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.field, p.message))
        ) from None
    config._origin = (path, text)
    return config


def located(config: Config, loc: tuple[int | str, ...], message: str) -> ConfigError:
    """A problem with a value of a valid config found later (a deploy file that is not there), at the
    file:line:column where it is written. The text is parsed again only now, on the way to an error."""
    origin = config._origin
    if origin is None:  # built in code, not read from a file
        return ConfigError([Problem(CONFIG_NAME, None, None, _dotted(loc), message)])
    path, text = origin
    line, column = _position(YAML(typ="rt").load(text), loc, key=False)
    return ConfigError([Problem(path, line, column, _dotted(loc), message)])


def _bad_character(path: str, text: str, exc: ReaderError) -> Problem:
    position = int(exc.position)
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
    return Problem(path, line, column, "", f"a character YAML does not allow (U+{code:04X}); remove it")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _plain(node: Any) -> Any:
    """ruamel's round-trip types as plain Python values, so validation sees what the user wrote."""
    if isinstance(node, dict):
        return {str(key) if not isinstance(key, str) else key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _relevant(document: Any, errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop errors of union members that do not fit the kind of value written (the `str` arm of
    `str | list[str]` when a list was given), which only repeat the same problem less precisely."""
    kept = [error for error in errors if _fits_union_arm(document, tuple(error["loc"]))]
    return kept or errors


def _fits_union_arm(document: Any, loc: tuple[int | str, ...]) -> bool:
    node = document
    for part in loc:
        if isinstance(part, str) and not isinstance(node, dict):
            is_list_arm = part.startswith("list[")
            return is_list_arm == isinstance(node, list)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return True
    return True


def _problem(path: str, document: CommentedMap, error: ErrorDetails) -> Problem:
    loc = _document_loc(document, tuple(error["loc"]))
    kind = error["type"]
    if loc and loc[-1] == "[key]":
        line, column = _position(document, loc[:-1], key=True)
        return Problem(path, line, column, _dotted(loc[:-1]), error["msg"].removeprefix("Value error, "))
    if kind == "extra_forbidden":
        line, column = _position(document, loc, key=True)
        known = _known_keys(Config, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        advice = f"did you mean '{hint[0]}'?" if hint else f"known keys here: {', '.join(known)}"
        return Problem(path, line, column, _dotted(loc), f"unknown key; {advice}")
    if kind == "missing":
        line, column = _position(document, loc[:-1], key=False)
        return Problem(path, line, column, _dotted(loc), "required key is missing")
    line, column = _position(document, loc, key=False)
    return Problem(path, line, column, _dotted(loc), error["msg"].removeprefix("Value error, "))


def _document_loc(document: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The error location as a path in the document: without the labels pydantic adds for union members
    (`str`, `list[str]`), which follow a value that is not a mapping."""
    out: list[int | str] = []
    node = document
    for part in loc:
        if isinstance(part, str) and not isinstance(node, dict):
            continue
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(out)


def _position(document: Any, loc: tuple[int | str, ...], *, key: bool) -> tuple[int | None, int | None]:
    """1-based line and column of the node at `loc` (of its key when `key`), or of its nearest ancestor."""
    node, line, column = document, 1, 1
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            place = (node.lc.data or {}).get(part)
            if place is None:  # a key merged in with `<<:` has no place of its own: say the mapping's
                break
            line, column = place[:2] if key and last else place[2:4]
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, column = node.lc.item(part)
            node = node[part]
        else:
            break
        line += 1
        column += 1
    return line, column


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "").replace("-", "").isalnum():
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    models = [member for member in _members(current) if _is_model(member)]
    return list(models[0].model_fields) if models else []


def _step(annotation: Any, part: int | str) -> Any:
    for candidate in _members(annotation):
        if _is_model(candidate) and isinstance(part, str) and part in candidate.model_fields:
            return candidate.model_fields[part].annotation
        origin = get_origin(candidate)
        if origin is dict:
            return get_args(candidate)[1]
        if origin is list and isinstance(part, int):
            return get_args(candidate)[0]
    return None


def _members(annotation: Any) -> Iterator[Any]:
    args = get_args(annotation)
    if args and get_origin(annotation) not in (dict, list):
        yield from args
    else:
        yield annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
