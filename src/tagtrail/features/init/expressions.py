"""What a workflow's `${{ }}` expressions in an image name say, as far as the repository tells.

An image name is known when each expression in it is: `env.*` (workflow, job and step levels), `github.repository`
and `github.repository_owner` (from the git remote), a matrix key or a reusable workflow's input whose values are
the apps' folders (`{app}`), or whose values pair each app with a name of its own that follows one template
(`include:` entries, or callers passing `image: ghcr.io/acme/api-svc`). A repository variable (`vars.*`) cannot
be read here: it is kept as a `{vars.name}` hole that the deploy files may fill. Anything else (secrets,
outputs, functions) leaves the name unknown. GitHub and metadata-action lowercase image names; so does this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

APP = "{app}"
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_VARIABLE = re.compile(r"\{vars\.([a-z0-9_]+)\}")


@dataclass(frozen=True)
class Context:
    """What the expressions of one step can be known from."""

    env: Mapping[str, str]
    owner_repo: str | None
    per_app: Mapping[str, str] = field(default_factory=dict)  # "matrix.svc" / "inputs.app" → value with {app}
    open_matrix: bool = False  # a matrix not written out (fromJSON): its entries are the apps, as tagtrail's
    mixed: Mapping[str, str] = field(default_factory=dict)  # "matrix.image" → "api → …, web → …"


def resolve(text: str, context: Context, depth: int = 0) -> str | None:
    """`text` with its expressions filled in, lowercased; `{vars.name}` for a repository variable; None when
    an expression cannot be known here."""
    owner_repo = context.owner_repo
    known = {
        "github.repository": owner_repo,
        "github.repository_owner": owner_repo.split("/")[0] if owner_repo else None,
        "github.event.repository.name": owner_repo.split("/")[1] if owner_repo else None,
    }
    failed = False

    def fill(match: re.Match[str]) -> str:
        nonlocal failed
        expression = match[1]
        value: str | None
        if expression.startswith("env.") and expression[4:] in context.env and depth < 5:
            value = resolve(context.env[expression[4:]], context, depth + 1)
        elif expression in context.per_app and depth < 5:
            value = resolve(context.per_app[expression], context, depth + 1)
        elif expression.startswith("matrix.") and context.open_matrix:
            value = APP
        elif re.fullmatch(r"vars\.[A-Za-z0-9_]+", expression):
            value = "{" + expression + "}"
        else:
            value = known.get(expression)
        failed = failed or value is None
        return value or ""

    resolved = _EXPRESSION.sub(fill, text).lower()  # metadata-action lowercases image names too
    return None if failed else resolved


def mixed_in(text: str, context: Context) -> list[tuple[str, str]]:
    """The expressions of `text` whose values pair each app with a name that follows no one template."""
    return [(m[1], context.mixed[m[1]]) for m in _EXPRESSION.finditer(text) if m[1] in context.mixed]


def variables(text: str) -> list[str]:
    """The repository variables a resolved name still has holes for."""
    return _VARIABLE.findall(text)


def filled(template: str, names: Iterable[str]) -> tuple[str, dict[str, str]] | None:
    """The first of `names` (image templates with {app}) that `template`'s `{vars.*}` holes can be filled to
    give, and what each variable would then be."""
    holes = variables(template)
    pattern = re.escape(template)
    for hole in holes:
        pattern = pattern.replace(re.escape("{vars." + hole + "}"), f"(?P<{hole}>.+?)", 1)
    for name in names:
        match = re.fullmatch(pattern, name)
        if match:
            return name, {hole: match[hole] for hole in holes}
    return None


def per_app(entries: Sequence[Mapping[str, str]], apps: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The keys of entries that each belong to one app (a matrix's `include:`, the `with:` of the jobs calling a
    reusable workflow) whose values follow one template across the entries: `{app}` for the app's own key,
    `apps/{app}` for its context, `ghcr.io/acme/{app}-svc` for its image; a constant stays a constant. Then
    the keys whose values follow no one template, each with its values by app (`api → …, web → …`)."""
    found: dict[str, str] = {}
    mixed: dict[str, str] = {}
    keys = {key for entry in entries for key in entry}
    for key in sorted(keys):
        templates: dict[str, str] = {}
        for entry in entries:
            app = _app_of(entry, apps)
            value = entry.get(key)
            if value is None or app is None:
                break
            templates.setdefault(value if app == APP else with_app(value, app), f"{app} → {value}")
        else:
            if len(templates) == 1:
                found[key] = next(iter(templates))
            elif templates:
                mixed[key] = ", ".join(templates.values())
    return found, mixed


def app_key(values: list[str], apps: list[str]) -> bool:
    """Whether a matrix key's values are the apps' folders (most of them apps, none a path or an image)."""
    named = [v for v in values if v in apps]
    return bool(values) and len(named) * 2 > len(values)


def with_app(value: str, app: str) -> str:
    """`value` with `app`, where it stands as a name of its own (not inside a longer word), as {app}."""
    return re.sub(rf"(?<![a-z0-9]){re.escape(app)}(?![a-z0-9])", APP, value)


def _app_of(entry: Mapping[str, str], apps: list[str]) -> str | None:
    values = list(entry.values())
    if APP in values:
        return APP
    for value in values:
        if value in apps:
            return value
    for value in values:
        last = value.rstrip("/").rsplit("/", 1)[-1]
        if "/" in value and last in apps:
            return last
    return None
