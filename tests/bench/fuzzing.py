"""Generators and guards for the fuzz tests (tests/fuzz/): YAML-ish text, mutations of valid files, JSON of
every shape, and a per-example alarm so a hang fails the example that caused it instead of the whole run.

The generators are deliberately grammar-aware but sloppy: they draw from the keys, indicators and values a
real file holds (so examples reach deep into the loaders) and from characters no file should hold (so the
error paths are walked too)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

# Long enough that only a real hang trips it on a loaded, shared machine; the nightly run uses the same.
EXAMPLE_SECONDS = 30.0


class Hang(Exception):  # a finding, not an error tagtrail raises
    """One example ran for longer than EXAMPLE_SECONDS."""


@contextmanager
def bounded(seconds: float = EXAMPLE_SECONDS) -> Iterator[None]:
    """Raise Hang inside the block if it runs for longer than `seconds` (main thread only: SIGALRM)."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"one example ran for more than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(call: Callable[[], T], allowed: type[Exception] | tuple[type[Exception], ...]) -> T | Exception:
    """What `call` returns, or the allowed exception it raised (any other propagates: a finding), under
    the per-example alarm."""
    with bounded():
        try:
            return call()
        except allowed as exc:
            return exc


# --- YAML-ish text -------------------------------------------------------------------------------------

INDICATORS = [
    ": ", ":", "- ", "-", "? ", "[", "]", "{", "}", ", ", ",", "&a ", "*a", "&b ", "*b", "!!str ", "!!map ",
    "!!seq ", "!!int ", "!custom ", "<<: ", "<<: *a", "# c", " #", "'", '"', "''", '""', "|", ">", "|-",
    ">+", "|2", "---", "...", "%YAML 1.2", "%TAG ! tag:x,2000:", "\t", "\\", "\\x", "\\u00", "@", "`", "%",
]  # fmt: skip
ODD = ["\ufeff", "\x00", "\x07", "\x85", "\u2028", "\ud800", "\U0001f600", "\r", "\r\n", "\x1b[31m", "é"]
SCALARS = [
    "ghcr.io/acme/homelab/web:main.20251014-051038.185c95c",
    "ghcr.io/acme/homelab/api@sha256:" + "a" * 64,
    "registry.lan:32000/worker:v1",
    "nginx:1.25",
    "docker.io/library/web",
    "web",
    "main.20251014-051038.185c95c",
    "sha256:" + "2" * 64,
    "{{branch}}.{{sha}}",
    "{app}",
    "ghcr.io/o/r/{app}",
    "true",
    "null",
    "~",
    "0x1F",
    "1e400",
    "-.inf",
    "10m",
    "1h",
    "2025-10-14",
    "{GENERATED_TAG}",
    '{"$imagepolicy": "flux-system:web"}',
    '{"$imagepolicy": "flux-system:api:tag"}',
    '{"$imagepolicy": "other:web:digest"}',
]


def yamlish(keys: list[str], *, max_lines: int = 30) -> st.SearchStrategy[str]:
    """Text made of the pieces of a YAML file: indented lines of keys, indicators, scalars, odd characters
    and arbitrary text, in any order."""
    piece = st.one_of(
        st.sampled_from(keys),
        st.sampled_from(INDICATORS),
        st.sampled_from(SCALARS),
        st.sampled_from(ODD),
        st.text(max_size=8),
        st.integers(-(10**20), 10**20).map(str),
    )
    line = st.builds(
        lambda indent, pieces: " " * indent + "".join(pieces),
        st.integers(0, 12),
        st.lists(piece, max_size=8),
    )
    ending = st.sampled_from(["\n", "\n", "\n", "\r\n", ""])
    return st.builds(
        lambda lines, end: "\n".join(lines) + end, st.lists(line, min_size=1, max_size=max_lines), ending
    )


@st.composite
def mutated(draw: st.DrawFn, originals: list[str], keys: list[str]) -> str:
    """A valid file with one to six edits: spans deleted, pieces inserted, characters replaced, lines
    duplicated, swapped, re-indented or cut."""
    text = draw(st.sampled_from(originals))
    insertion = st.one_of(
        st.sampled_from(keys), st.sampled_from(INDICATORS), st.sampled_from(SCALARS), st.sampled_from(ODD)
    )
    for _ in range(draw(st.integers(1, 6))):
        lines = text.split("\n")
        where = draw(st.integers(0, len(text)))
        row = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["delete", "insert", "replace", "dup", "swap", "indent", "cut"])):
            case "delete":
                text = text[:where] + text[where + draw(st.integers(1, 20)) :]
            case "insert":
                text = text[:where] + draw(st.one_of(insertion, st.text(max_size=5))) + text[where:]
            case "replace":
                text = text[:where] + draw(st.characters()) + text[where + 1 :]
            case "dup":
                lines.insert(row, lines[row])
                text = "\n".join(lines)
            case "swap":
                other = draw(st.integers(0, len(lines) - 1))
                lines[row], lines[other] = lines[other], lines[row]
                text = "\n".join(lines)
            case "indent":
                lines[row] = " " * draw(st.integers(0, 9)) + lines[row].lstrip(" ")
                text = "\n".join(lines)
            case _:
                text = text[:where]
    return text


# --- JSON --------------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(SCALARS),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


def nested(depth: int, leaf: Any) -> str:
    """`leaf` inside `depth` lists and objects, alternating: deeper than any parser's default stack."""
    opens = "".join('[{"k":' if i % 2 else "[" for i in range(depth))
    closes = "".join("}]" if i % 2 else "]" for i in reversed(range(depth)))
    return opens + json.dumps(leaf) + closes


def as_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


@st.composite
def body_bytes(draw: st.DrawFn, shapes: st.SearchStrategy[Any]) -> bytes:
    """A JSON body drawn from `shapes`, or the same with its bytes damaged (non-UTF-8, cut, nested deep),
    or bytes that are no JSON at all."""
    body = as_bytes(draw(shapes))
    match draw(st.sampled_from(["as is", "as is", "bytes", "latin1", "cut", "deep", "huge", "garbage"])):
        case "bytes":
            where = draw(st.integers(0, len(body)))
            return body[:where] + draw(st.binary(min_size=1, max_size=8)) + body[where:]
        case "latin1":
            return json.dumps(draw(shapes), ensure_ascii=False).encode("latin-1", "replace") + b"\xff\xfe"
        case "cut":
            return body[: draw(st.integers(0, len(body)))]
        case "deep":
            return nested(draw(st.integers(1, 5000)), draw(shapes)).encode()
        case "huge":
            return b"[" + b",".join([body] * draw(st.integers(1, 2000))) + b"]"
        case "garbage":
            return draw(st.binary(max_size=200))
    return body
