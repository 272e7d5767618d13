"""Reading a YAML file for references: its node trees, each node's value token, and one-line refusals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tagtrail.adapters.refs._model import Matcher, Span
from tagtrail.config import guard
from tagtrail.config.guard import DEPLOY_FILE_MAX_BYTES
from tagtrail.errors import RefsError

BOM = "\ufeff"
_MARKER = re.compile(r'[ \t]*#[ \t]*\{"\$imagepolicy":[ \t]*"(?P<policy>[^"]*)"\}')
_PROPERTY_END = re.compile(r"[^ \t\r\n]*(?:[ \t\r\n]+|#[^\n]*\n)*")
# An empty value (`tag:`): libyaml marks it right after the colon, ruamel.yaml's parser at the next token.
_EMPTY_VALUE = re.compile(r":(?:(?:[ \t]*(?:#[^\n]*)?\r?\n)+[ \t]*|[ \t]*)\Z")
MERGE_TAG = "tag:yaml.org,2002:merge"


def compose(path: str, text: str, *, shaped: bool = False) -> list[Node]:
    """The documents' node trees, with character positions (`guard.compose`), once the limits every YAML
    tagtrail reads obeys (size, depth, alias expansion) pass; a refusal as one line. `text` has no byte order
    mark. `shaped`: the text has the shape of one that passed (only value tokens differ), so only its size
    is checked again."""
    limits = guard.check_size if shaped else guard.check
    too_much = limits(text, DEPLOY_FILE_MAX_BYTES)
    if too_much is not None:
        where = f"{path}:{too_much.line}" if too_much.line else path
        raise RefsError(f"{where}: {too_much.message}; tagtrail does not read it; nothing was written")
    try:
        return guard.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise RefsError(
            f"{where}: not valid YAML ({(exc.problem or exc.context or '').strip()}); correct the file there;"
            " nothing was written"
        ) from None
    except YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise RefsError(
            f"{path}: not valid YAML ({problem}); correct the file; nothing was written"
        ) from None
    except AssertionError:  # how ruamel.yaml refuses `%YAML 1.20`
        raise RefsError(
            f"{path}: not valid YAML (a %YAML directive of a version other than 1.1 or 1.2); correct the"
            " file; nothing was written"
        ) from None


@dataclass
class Scan:
    """One file being read: where its node positions start (after a byte order mark), the matcher, and the
    scalars already claimed by a split reference, so that no value is read as two references."""

    path: str
    text: str
    matcher: Matcher
    offset: int = 0
    used: set[int] = field(default_factory=set)
    shaped: bool = False  # see `compose`

    @classmethod
    def of(cls, path: str, text: str, matcher: Matcher, *, shaped: bool = False) -> Scan:
        return cls(path, text, matcher, len(BOM) if text.startswith(BOM) else 0, shaped=shaped)

    def documents(self) -> list[Node]:
        return compose(self.path, self.text[self.offset :], shaped=self.shaped)

    def span(self, node: ScalarNode) -> Span:
        """The value token only: an `&anchor` or `!tag` before it is the node's, and stays as written."""
        start, end = node.start_mark.index + self.offset, node.end_mark.index + self.offset
        while start < end and self.text[start] in "&!":
            match = _PROPERTY_END.match(self.text, start, end)
            start = match.end() if match and match.end() > start else end
        if start == end and not node.style:
            window = start
            for _ in range(20):  # the key's line, and comment or blank lines up to the next token
                window = self.text.rfind("\n", 0, window - 1) if window > 0 else 0
            empty = _EMPTY_VALUE.search(self.text, max(window, 0), start)
            start = end = empty.start() + 1 if empty else start
        lead = " " if start == end and self.text[start - 1 : start] == ":" else ""
        return Span(start, end, node.style or None, str(node.value), lead)

    def line(self, node: Node) -> int:
        return int(node.start_mark.line) + 1

    def refuse(self, node: Node, message: str) -> NoReturn:
        raise RefsError(f"{self.path}:{self.line(node)}: {message}; nothing was written")

    def marker(self, node: ScalarNode) -> str | None:
        """The policy of a Flux `# {"$imagepolicy": "…"}` marker on the scalar's line, right after it."""
        end = node.end_mark.index + self.offset
        line_end = self.text.find("\n", end)
        match = _MARKER.match(self.text, end, line_end if line_end >= 0 else len(self.text))
        return match["policy"] if match else None


def is_text(node: Node | None) -> bool:
    """A scalar that can hold a reference: block scalars (`|`, `>`) are prose."""
    return isinstance(node, ScalarNode) and node.style not in ("|", ">")


def pairs(node: MappingNode, within: frozenset[int] = frozenset()) -> dict[str, Node]:
    """The mapping's keys as YAML reads them: merged mappings (`<<: *base`) first, its own keys over them.
    A mapping merged into itself (`a: &w {<<: *w}`) adds nothing the second time (`within`)."""
    merged: dict[str, Node] = {}
    own: dict[str, Node] = {}
    within = within | {id(node)}
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            continue
        if key.tag == MERGE_TAG:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in reversed(sources):  # the first mapping listed wins
                if isinstance(source, MappingNode) and id(source) not in within:
                    merged.update(pairs(source, within))
        else:
            own[str(key.value)] = value
    return merged | own


def nodes(root: Node) -> tuple[list[MappingNode], dict[int, tuple[ScalarNode, set[str]]]]:
    """Every mapping and every value scalar of a document once, however many aliases reach it; for each
    scalar, the keys it sits under. Keys themselves are never references (`homeslice:sonos:` is a key)."""
    seen: set[int] = set()
    mappings: list[MappingNode] = []
    scalars: dict[int, tuple[ScalarNode, set[str]]] = {}
    stack: list[tuple[Node, str | None]] = [(root, None)]
    while stack:
        node, key = stack.pop()
        if isinstance(node, ScalarNode):
            entry = scalars.setdefault(id(node), (node, set()))
            if key is not None:
                entry[1].add(key)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            mappings.append(node)
            stack.extend(
                (v, str(k.value) if isinstance(k, ScalarNode) else None) for k, v in reversed(node.value)
            )
        elif isinstance(node, SequenceNode):
            stack.extend((item, None) for item in reversed(node.value))
    return mappings, scalars
