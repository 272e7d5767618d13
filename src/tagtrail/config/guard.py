"""Limits on every YAML file tagtrail reads (tagtrail.yaml and the deploy files): a size cap, a nesting
depth, and a budget on what aliases expand to, checked in one linear pass over libyaml's events before any
tree is built. A "billion laughs" file (aliases of aliases) or a 20,000-deep nesting is refused with one line
instead of eating memory, time or the stack. Then, for a file read for its image references, its node trees
(`compose`), composed the one way every such reader does."""

from __future__ import annotations

from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, Event, ScalarEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

# 500 apps with pins and inputs fit in a tenth of this; the round-trip parser takes ~10 s of CPU a MiB.
CONFIG_MAX_BYTES = 256 * 1024
DEPLOY_FILE_MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100
MAX_EXPANDED_NODES = 1_000_000  # nodes the document would hold with every alias expanded


@dataclass(frozen=True)
class TooMuch:
    """What a limit refused, and where (1-based line, when known)."""

    message: str
    line: int | None = None


def check(text: str, max_bytes: int) -> TooMuch | None:
    """The first limit `text` breaks, or None. YAML errors are left to the parser that reads it next."""
    too_big = check_size(text, max_bytes)
    if too_big is not None:
        return too_big
    walk = _Walk()
    try:
        for event in YAML(typ="safe", pure=False).parse(text):
            problem = walk.see(event)
            if problem is not None:
                return TooMuch(problem, event.start_mark.line + 1 if event.start_mark else None)
    except (YAMLError, RecursionError, UnicodeEncodeError):  # a lone surrogate: the next parser says where
        return None
    return None


def check_size(text: str, max_bytes: int) -> TooMuch | None:
    """The size limit alone: for a text whose shape (nesting, aliases) is that of one `check` passed."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return TooMuch(f"the file is {size // 1024} KiB, over the limit of {max_bytes // 1024} KiB")
    return None


def compose(text: str) -> list[Node]:
    """The documents' node trees, with character positions, of a text `check` passed. libyaml's parser
    first: the same nodes, six times faster than ruamel.yaml's, which matters for files of hundreds of
    references. It speaks YAML 1.1, which refuses a few things 1.2 allows (`{image: repo:tag}` in a flow
    mapping), so anything it refuses is read again by ruamel.yaml's own parser, which decides (its safe
    flavour: comments are not needed here), raising its YAMLError, or AssertionError for a %YAML directive of
    a version other than 1.1 or 1.2. The two parsers disagree on whether a byte order mark counts as a
    character: character positions are right for a text without one (the reference finder strips it); lines
    are the same either way. A plain scalar's type is not resolved (`_MergeKeys`)."""
    try:
        return [doc for doc in _composer(pure=False).compose_all(text) if doc is not None]
    except (YAMLError, UnicodeEncodeError):  # libyaml refuses a lone surrogate; the pure parser says where
        pass
    return [doc for doc in _composer(pure=True).compose_all(text) if doc is not None]


def _composer(*, pure: bool) -> YAML:
    yaml = YAML(typ="safe", pure=pure)
    yaml.Resolver = _MergeKeys
    return yaml


class _MergeKeys(VersionedResolver):
    """The one implicit type a reader of references asks about: a merge key (`<<`). Every other scalar is a
    string, as a reference is: ruamel.yaml's resolver matches each plain scalar against YAML's implicit types
    (int, float, bool, timestamp…) in Python, half the composer's time on a file of hundreds of references,
    which every push to one of its apps reads back twice."""

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> Tag:
        if kind is ScalarNode:
            return _MERGE if implicit[0] and value == "<<" else self.DEFAULT_SCALAR_TAG
        return self.DEFAULT_MAPPING_TAG if kind is MappingNode else self.DEFAULT_SEQUENCE_TAG


_MERGE = Tag(suffix="tag:yaml.org,2002:merge")


@dataclass
class _Open:
    anchor: str | None
    nodes: int = 1


@dataclass
class _Walk:
    """Counts the nodes the document would hold with its aliases expanded, and how deep it nests."""

    sizes: dict[str, int] = field(default_factory=dict)  # anchor → nodes its value expands to
    stack: list[_Open] = field(default_factory=list)
    total: int = 0

    def see(self, event: Event) -> str | None:
        if isinstance(event, CollectionStartEvent):
            if len(self.stack) >= MAX_DEPTH:
                return f"nesting deeper than {MAX_DEPTH} levels"
            self.stack.append(_Open(event.anchor))
            return None
        if isinstance(event, CollectionEndEvent):
            done = self.stack.pop()
            if done.anchor:
                self.sizes[done.anchor] = done.nodes
            return self._add(done.nodes)
        if isinstance(event, AliasEvent):
            return self._add(self.sizes.get(event.anchor, 1))
        if isinstance(event, ScalarEvent):
            if event.anchor:
                self.sizes[event.anchor] = 1
            return self._add(1)
        return None

    def _add(self, nodes: int) -> str | None:
        if self.stack:
            self.stack[-1].nodes += nodes
        else:
            self.total += nodes
        if self.total + (self.stack[0].nodes if self.stack else 0) > MAX_EXPANDED_NODES:
            return f"its aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?)"
        return None
