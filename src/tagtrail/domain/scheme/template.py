"""Split a docker/metadata-action tag template into literal text and Handlebars expressions.

Only the part of Handlebars that metadata-action's global expressions use is accepted: `{{name}}`,
`{{{name}}}` (not HTML-escaped), positional string arguments and `key='value'` options, e.g.
`{{date 'YYYYMMDD-HHmmss' tz='UTC'}}`. Anything else is refused with the position it was found at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tagtrail.errors import SchemeError


@dataclass(frozen=True)
class Literal:
    """Template text outside any expression, copied to the tag as written."""

    text: str


@dataclass(frozen=True)
class Expression:
    """One `{{…}}` expression: helper name, positional string arguments, `key=value` options."""

    name: str
    args: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    escaped: bool
    source: str
    offset: int

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)


Part = Literal | Expression

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<key>[A-Za-z_][\w-]*)=(?:'(?P<kv1>[^']*)'|"(?P<kv2>[^"]*)"|(?P<kv3>[^\s'"]+))
      | '(?P<arg1>[^']*)'
      | "(?P<arg2>[^"]*)"
      | (?P<word>[A-Za-z_][\w-]*)
    )""",
    re.VERBOSE,
)


def split_template(template: str) -> list[Part]:
    """Return the template's parts in order; raise SchemeError naming the character where it is malformed."""
    parts: list[Part] = []
    pos = 0
    while pos < len(template):
        start = template.find("{{", pos)
        if start < 0:
            parts.append(Literal(template[pos:]))
            break
        if start > 0 and template[start - 1] == "\\":
            raise SchemeError(
                f"escaped mustache at character {start}: '\\{{{{' is not supported in a tag scheme"
            )
        if start > pos:
            parts.append(Literal(template[pos:start]))
        triple = template.startswith("{{{", start)
        close = "}}}" if triple else "}}"
        body_start = start + (3 if triple else 2)
        end = template.find(close, body_start)
        if end < 0:
            raise SchemeError(f"'{{{{' at character {start + 1} is never closed with '{close}'")
        parts.append(
            _parse_expression(template[body_start:end], template[start : end + len(close)], start, triple)
        )
        pos = end + len(close)
    return parts


def _parse_expression(body: str, source: str, offset: int, triple: bool) -> Expression:
    where = f"'{source}' at character {offset + 1}"
    stripped = body.strip()
    if not stripped:
        raise SchemeError(f"empty expression {where}")
    if stripped[0] in "#/^!>&~" or stripped[-1] == "~":
        raise SchemeError(
            f"{where}: block helpers, partials, comments and whitespace control are not part of a tag scheme"
        )
    name: str | None = None
    args: list[str] = []
    options: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        match = _TOKEN.match(body, pos)
        if match is None:
            raise SchemeError(f"cannot read {where} from '{body[pos:].strip()}' on")
        pos = match.end()
        if match["key"] is not None:
            value = next(v for v in (match["kv1"], match["kv2"], match["kv3"]) if v is not None)
            options.append((match["key"], value))
        elif match["word"] is not None and name is None:
            name = match["word"]
        elif match["word"] is not None:
            raise SchemeError(f"{where}: unquoted argument '{match['word']}'; quote it as '{match['word']}'")
        else:
            args.append(match["arg1"] if match["arg1"] is not None else match["arg2"])
    if name is None:
        raise SchemeError(f"{where} has no helper name")
    return Expression(name, tuple(args), tuple(options), escaped=not triple, source=source, offset=offset)
