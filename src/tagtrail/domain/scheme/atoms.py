"""A scheme's template compiled into atoms (text, branch, sha, time tokens), and what atoms give: the tag
rendered for a commit, and the regular expression that reads a tag back.

Compiling refuses what a scheme cannot be read from: an expression that is not a scheme's, one that comes
twice, a missing branch or sha, and two parts of no fixed width that touch (their tags could split two
ways). So every template that compiles gives tags that parse one way only.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal as TypingLiteral

from tagtrail.domain.scheme.moment import DateFormat, Token, compile_format
from tagtrail.domain.scheme.template import Expression, Literal, split_template
from tagtrail.domain.scheme.validity import sanitize_tag
from tagtrail.domain.scheme.zones import resolve_zone
from tagtrail.errors import SchemeError

_HANDLEBARS_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
)
_NOT_SCHEME_EXPRESSIONS = {"tag", "base_ref", "is_default_branch", "is_not_default_branch"}


@dataclass(frozen=True)
class Text:
    raw: str


@dataclass(frozen=True)
class Field:
    kind: TypingLiteral["branch", "sha"]
    escaped: bool


@dataclass(frozen=True)
class Time:
    token: Token
    escaped: bool


Atom = Text | Field | Time


@dataclass(frozen=True)
class DateSlot:
    kind: TypingLiteral["date", "commit_date"]
    fmt: DateFormat
    zone: tzinfo


def escape(text: str, escaped: bool) -> str:
    """Handlebars' HTML escaping of a `{{…}}` value, which metadata-action's tags inherit."""
    return text.translate(_HANDLEBARS_ESCAPES) if escaped else text


def compile_template(template: str) -> tuple[tuple[Atom, ...], DateSlot | None]:
    """The atoms of a template and its date, if any; every problem is a SchemeError saying what to write."""
    atoms: list[Atom] = []
    date: DateSlot | None = None
    seen: set[str] = set()
    for part in split_template(template):
        if isinstance(part, Literal):
            atoms.append(Text(part.text))
            continue
        kind = _expression_kind(part)
        if kind in seen or (kind in ("date", "commit_date") and date is not None):
            raise SchemeError(
                f"{part.source} appears more than once; a scheme reads one branch, sha and time"
            )
        seen.add(kind)
        if kind in ("branch", "sha"):
            atoms.append(Field("branch" if kind == "branch" else "sha", part.escaped))
        else:
            date = DateSlot("date" if kind == "date" else "commit_date", *_date_parts(part))
            atoms.extend(
                Text(escape(i, part.escaped)) if isinstance(i, str) else Time(i, part.escaped)
                for i in date.fmt.items
            )
    for required, why in (
        ("sha", "it is how a running image is traced to its commit"),
        ("branch", "it is how eligible builds are told from others"),
    ):
        if required not in seen:
            raise SchemeError(f"the scheme '{template}' has no {{{{{required}}}}}: {why}")
    _check_adjacency(template, atoms)
    return tuple(atoms), date


def render(
    atoms: tuple[Atom, ...], sha_length: int, branch: str, sha: str, local: datetime, *, escape_branch: bool
) -> str:
    """The template's text for this branch, sha and local time, before metadata-action sanitises it."""
    out: list[str] = []
    for atom in atoms:
        if isinstance(atom, Text):
            out.append(atom.raw)
        elif isinstance(atom, Time):
            out.append(escape(atom.token.render(local), atom.escaped))
        elif atom.kind == "branch":
            out.append(escape(branch, atom.escaped and escape_branch))
        else:
            out.append(sha[:sha_length])
    return "".join(out)


def pattern(
    atoms: tuple[Atom, ...],
    sha_length: int,
    branch: str | tuple[str, ...] | None = None,
    *,
    groups: bool = True,
    key: bool = False,
    branch_group: bool = False,
) -> str:
    """The regex of a tag. `branch` fixes the branch; without `groups` nothing is captured but, with
    `key`, the span from the first to the last time token and, with `branch_group`, the branch."""
    pieces: list[tuple[str, bool]] = []  # (regex, is a time token)
    text = ""
    for atom in (*atoms, None):
        if isinstance(atom, Text):
            text += atom.raw
            continue
        if text:
            pieces.append((re.escape(sanitize_tag(text)), False))
            text = ""
        if atom is None:
            break
        if isinstance(atom, Time):
            body = atom.token.pattern
            pieces.append((f"(?P<{atom.token.field}>{body})" if groups else f"(?:{body})", True))
        elif atom.kind == "branch":
            body = r"[A-Za-z0-9_.-]+"
            named = f"(?P<branch>{body})" if groups or branch_group else f"(?:{body})"
            if isinstance(branch, tuple):
                fixed = "(?:" + "|".join(re.escape(b) for b in branch) + ")"
            else:
                fixed = re.escape(branch) if branch is not None else named
            pieces.append((fixed, False))
        else:
            body = f"[0-9a-f]{{{sha_length}}}"
            pieces.append((f"(?P<sha>{body})" if groups else f"(?:{body})", False))
    if key:
        times = [i for i, (_, is_time) in enumerate(pieces) if is_time]
        first, last = times[0], times[-1]
        span = "".join(regex for regex, _ in pieces[first : last + 1])
        pieces = [*pieces[:first], (f"({span})", True), *pieces[last + 1 :]]
    return "".join(regex for regex, _ in pieces)


def _check_adjacency(template: str, atoms: list[Atom]) -> None:
    """Refuse templates where two parts of no fixed width touch: their tags could split two ways."""
    parts = [a for a in atoms if not (isinstance(a, Text) and a.raw == "")]
    for left, right in itertools.pairwise(parts):
        if isinstance(left, Text) or isinstance(right, Text):
            continue
        is_branch = isinstance(left, Field) and left.kind == "branch"
        right_variable = (isinstance(right, Field) and right.kind == "branch") or (
            isinstance(right, Time) and right.token.variable
        )
        right_digits = isinstance(right, Field) or right.token.numeric
        left_digit_run = isinstance(left, Time) and left.token.variable
        if (is_branch and right_variable) or (left_digit_run and right_digits):
            raise SchemeError(
                f"in '{template}', {_describe(left)} runs into {_describe(right)} with nothing between"
                " them, so a tag could be read two ways; put a separator there or use a zero-padded token"
            )


def _describe(atom: Field | Time) -> str:
    return f"'{atom.token.text}'" if isinstance(atom, Time) else f"{{{{{atom.kind}}}}}"


def _expression_kind(part: Expression) -> str:
    if part.name in _NOT_SCHEME_EXPRESSIONS:
        raise SchemeError(
            f"{part.source} is not usable in a tag scheme: it is empty or constant on branch builds; a scheme is made"
            " of {{branch}}, {{sha}}, {{date 'FORMAT'}} or {{commit_date 'FORMAT'}}, and literal text"
        )
    if part.name not in ("branch", "sha", "date", "commit_date"):
        raise SchemeError(
            f"unknown expression {part.source} at character {part.offset + 1}; a scheme is made of {{{{branch}}}},"
            " {{sha}}, {{date 'FORMAT' tz='ZONE'}}, {{commit_date 'FORMAT' tz='ZONE'}} and literal text"
        )
    if part.name in ("branch", "sha") and (part.args or part.options):
        raise SchemeError(
            f"{part.source} takes no arguments"
            + ("; the sha length is set with sha_length in tagtrail.yaml" if part.name == "sha" else "")
        )
    return part.name


def _date_parts(part: Expression) -> tuple[DateFormat, tzinfo]:
    if len(part.args) != 1:
        raise SchemeError(
            f"{part.source} needs exactly one format, e.g. {{{{{part.name} 'YYYYMMDD-HHmmss'}}}}"
        )
    unknown = [key for key, _ in part.options if key != "tz"]
    if unknown:
        raise SchemeError(f"{part.source}: unknown option '{unknown[0]}' (only tz='ZONE' is accepted)")
    return compile_format(part.args[0]), resolve_zone(part.option("tz") or "UTC")
