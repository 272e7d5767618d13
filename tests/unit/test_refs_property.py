"""Property: over generated deploy files, a rewrite changes exactly the value tokens it means to (issue 10).

Each generated file mixes the shapes users write: block and flow style, anchors and aliases, merge keys,
`!!str` tags, comments on the line, plain and quoted scalars, CRLF, a byte order mark, several documents,
Helm values split across keys, kustomization entries, Flux markers, block scalars and third-party images.
The generator renders each piece twice, as written and as it must read after the rewrite, so the test
states for every example: the rewrite is exactly the expected text (only the intended value tokens changed
or were added, every other byte is identical), the result parses to the intended images, and each app has
as many references as before.

CI (CI=true) runs 10,000 examples, the `ci` profile of tests/conftest.py; a local run fewer.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tagtrail.adapters.refs import Image, Matcher, find, rewrite

EXAMPLES = 10_000 if os.environ.get("CI") == "true" else 500
APPS = ("web", "api", "worker")
NEW = {"web": "main.20251014-051038.185c95c", "api": "v2.0.1", "worker": "2025.10.14-abc"}
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
M = Matcher("ghcr.io/acme/homelab/{app}", ["registry.lan:32000/{app}", "docker.io/library/{app}"])
TARGETS = {app: Image(f"ghcr.io/acme/homelab/{app}", NEW[app], D2) for app in APPS}

Check = Callable[[Any], None]  # asserts, on one loaded document, what a piece must read after the rewrite


@dataclass
class Piece:
    """Lines of one document as written and as they must read after the rewrite, with what to check."""

    before: list[str]
    after: list[str]
    checks: list[Check] = field(default_factory=list)
    refs: Counter[str] = field(default_factory=Counter)  # the references it holds, per app


@dataclass
class File:
    text: str
    expected: str
    chosen: frozenset[str]
    documents: list[list[Check]]
    refs: Counter[str]


def q(style: str, value: str) -> str:
    return f"{style}{value}{style}"


def equals(value: Any, *path: str | int) -> Check:
    def check(document: Any) -> None:
        node = document
        for key in path:
            node = node[key]
        assert node == value, (path, node, value)

    return check


apps = st.sampled_from(APPS)
styles = st.sampled_from(["", "'", '"'])
comments = st.sampled_from(["", "  # note", " # {not a marker}"])
old_tags = st.sampled_from(["old", "main.20251010-000000.aaaaaaa", "1.0-rc"])
words = st.from_regex(r"[a-z][a-z0-9 ._-]{0,12}[a-z0-9]", fullmatch=True)  # never ": ", never a reference


def strict_names(app: str) -> list[str]:
    """Ways a file names an app's image anywhere: canonical, an alias registry, Docker Hub's long form."""
    return [f"ghcr.io/acme/homelab/{app}", f"registry.lan:32000/{app}", f"docker.io/{app}"]


@st.composite
def scalar(draw: st.DrawFn, n: int, chosen: frozenset[str]) -> Piece:
    app = draw(apps)
    key = draw(st.sampled_from(["image", "ref"]))
    name = draw(st.sampled_from(strict_names(app) + ([app] if key == "image" else [])))
    tag = draw(st.one_of(old_tags, st.just("")))
    old = name + (f":{tag}" if tag else "") + draw(st.sampled_from(["", "@" + D1]))
    new = f"{name}:{NEW[app]}@{D2}" if app in chosen else old
    props = draw(st.sampled_from(["", "!!str ", f"&a{n} ", f"&a{n} !!str "]))
    style, comment = draw(styles), draw(comments)
    piece = Piece(
        [f"k{n}:", f"  {key}: {props}{q(style, old)}{comment}"],
        [f"k{n}:", f"  {key}: {props}{q(style, new)}{comment}"],
        [equals(new, f"k{n}", key)],
        Counter([app]),
    )
    if props.startswith("&") and draw(st.booleans()):
        piece.before.append(f"alias{n}: *a{n}")
        piece.after.append(f"alias{n}: *a{n}")
        piece.checks.append(equals(new, f"alias{n}"))
    return piece


@st.composite
def helm(draw: st.DrawFn, n: int, chosen: frozenset[str]) -> Piece:
    app = draw(apps)
    repository_key, tag_key = (
        draw(st.sampled_from(["repository", "name", "image"])),
        draw(st.sampled_from(["tag", "version"])),
    )
    if draw(st.booleans()):
        repository = [("registry", "ghcr.io"), (repository_key, f"acme/homelab/{app}")]
    else:
        repository = [(repository_key, draw(st.sampled_from([*strict_names(app), app])))]
    flow = draw(st.booleans())
    style, old = draw(styles), draw(old_tags if flow else st.one_of(old_tags, st.just("")))
    digest = draw(st.sampled_from([None, "''", D1]))
    new_tag = NEW[app] if digest is not None else f"{NEW[app]}@{D2}"
    before = [*repository, (tag_key, q(style, old)), ("pullPolicy", "IfNotPresent")]
    after = [
        *repository,
        (tag_key, q(style, new_tag if app in chosen else old)),
        ("pullPolicy", "IfNotPresent"),
    ]
    if digest is not None:
        before.append(("digest", digest))
        after.append(("digest", (f"'{D2}'" if digest == "''" else D2) if app in chosen else digest))
    order = draw(st.permutations(range(len(before))))
    checks = [equals(new_tag, f"k{n}", tag_key)] if app in chosen else []

    def render(pairs: list[tuple[str, str]]) -> list[str]:
        ordered = [pairs[i] for i in order]
        if flow:  # all on the key's line
            return [f"k{n}: {{{', '.join(f'{key}: {value}' for key, value in ordered)}}}"]
        # an empty plain tag is `tag:`, and gains its space with its value
        return [f"k{n}:", *(f"  {key}:{' ' if value else ''}{value}" for key, value in ordered)]

    return Piece(render(before), render(after), checks, Counter([app]))


@st.composite
def merged(draw: st.DrawFn, n: int, chosen: frozenset[str]) -> Piece:
    """A Helm image anchored in one mapping and merged into another (`<<: *base`), with or without a tag of
    its own: each tag node is edited once, however many mappings read it."""
    app = draw(apps)
    name, style = draw(st.sampled_from(strict_names(app))), draw(styles)
    own = draw(st.booleans())

    def lines(rewritten: bool) -> list[str]:
        def tag(value: str) -> str:
            return q(style, f"{NEW[app]}@{D2}" if rewritten and app in chosen else value)

        return [
            f"b{n}: &h{n}",
            f"  repository: {name}",
            f"  tag: {tag('old')}",
            f"k{n}:",
            f"  <<: *h{n}",
            "  pullPolicy: Always",
            *([f"  tag: {tag('other')}"] if own else []),
        ]

    checks = [equals(f"{NEW[app]}@{D2}", key, "tag") for key in (f"b{n}", f"k{n}")] if app in chosen else []
    return Piece(lines(False), lines(True), checks, Counter([app, app]))


@st.composite
def kustomize(draw: st.DrawFn, n: int, chosen: frozenset[str]) -> Piece:
    app = draw(apps)
    name, style, comment = draw(st.sampled_from([*strict_names(app), app])), draw(styles), draw(comments)
    has_tag, has_digest = draw(st.sampled_from([(True, False), (False, True), (True, True)]))
    entry = (
        [("name", name)]
        + ([("newTag", q(style, "old"))] if has_tag else [])
        + ([("digest", D1)] if has_digest else [])
    )
    order = draw(st.permutations(range(len(entry))))
    new = {"name": name, "newTag": q(style, NEW[app]), "digest": D2}

    def lines(pairs: list[tuple[str, str]]) -> list[str]:
        return [("- " if i == 0 else "  ") + f"{pairs[k][0]}: {pairs[k][1]}" for i, k in enumerate(order)]

    before = [f"k{n}:", *lines(entry)]
    before[-1] += comment
    if app not in chosen:
        after = before
    else:
        after = [f"k{n}:", *lines([(key, new[key]) for key, _ in entry])]
        after[-1] += comment
        after += ([] if has_tag else [f"  newTag: {NEW[app]}"]) + ([] if has_digest else [f"  digest: {D2}"])
    third_party = ["- name: nginx", "  newTag: '1.25'"] if draw(st.booleans()) else []
    checks = (
        [equals(NEW[app], f"k{n}", 0, "newTag"), equals(D2, f"k{n}", 0, "digest")] if app in chosen else []
    )
    return Piece(
        before + third_party, after + third_party, checks, Counter([app] + ["nginx"] * bool(third_party))
    )


@st.composite
def marker(draw: st.DrawFn, n: int, chosen: frozenset[str], digest_marked: set[str]) -> Piece:
    """A Flux marker: a whole reference, or its tag or digest; a policy of another namespace is not ours."""
    app, part, namespace = (
        draw(apps),
        draw(st.sampled_from(["", ":tag", ":digest"])),
        draw(st.sampled_from(["flux-system", "elsewhere"])),
    )
    style = draw(styles)
    old = {"": "quay.io/other/thing:1.0-rc", ":tag": "old", ":digest": D1}[part]
    ours = app in chosen and namespace == "flux-system"
    if part == ":digest" and namespace == "flux-system":
        digest_marked.add(app)
    new = {
        "": f"ghcr.io/acme/homelab/{app}:{NEW[app]}@{D2}",
        ":tag": NEW[app] if app in digest_marked else f"{NEW[app]}@{D2}",
        ":digest": D2,
    }[part]
    mark = f' # {{"$imagepolicy": "{namespace}:{app}{part}"}}'
    after = new if ours else old

    def check(document: Any) -> None:  # read when the whole file is drawn: a later `:digest` marker counts
        pinned = NEW[app] if part == ":tag" and app in digest_marked else new
        assert document[f"k{n}"] == (pinned if ours else old)

    counted = Counter([app] if namespace == "flux-system" else [])
    return Piece([f"k{n}: {q(style, old)}{mark}"], [f"k{n}: {q(style, after)}{mark}"], [check], counted)


@st.composite
def noise(draw: st.DrawFn, n: int, chosen: frozenset[str]) -> Piece:
    kind = draw(st.sampled_from(["word", "comment", "blank", "third", "block", "flow"]))
    if kind == "word":
        lines = [f"k{n}: {q(draw(styles), draw(words))}{draw(comments)}"]
    elif kind == "comment":
        lines = [f"# {draw(words)} ghcr.io/acme/homelab/web:in-a-comment"]
    elif kind == "blank":
        lines = [""]
    elif kind == "third":
        lines = [f"k{n}: {q(draw(styles), 'nginx:1.25')}{draw(comments)}"]
    elif kind == "block":
        lines = [
            f"k{n}: {draw(st.sampled_from(['|', '>-']))}",
            "  ghcr.io/acme/homelab/web:in-a-block-scalar",
        ]
    else:  # a flow sequence holding a reference and a word
        app, style = draw(apps), draw(styles)
        old = f"{draw(st.sampled_from(strict_names(app)))}:old"
        new = f"{old[:-4]}:{NEW[app]}@{D2}" if app in chosen else old
        return Piece(
            [f"k{n}: [{q(style, old)}, word]"],
            [f"k{n}: [{q(style, new)}, word]"],
            [equals(new, f"k{n}", 0)],
            Counter([app]),
        )
    return Piece(lines, lines, refs=Counter(["nginx"] if kind == "third" else []))


@st.composite
def files(draw: st.DrawFn) -> File:
    chosen = frozenset(draw(st.sets(apps, min_size=1)))
    digest_marked: set[str] = set()
    counter = 0
    documents: list[list[Piece]] = []
    for _ in range(draw(st.integers(1, 3))):
        pieces = [Piece([f"d{counter}: document"], [f"d{counter}: document"])]  # never an empty document
        for _ in range(draw(st.integers(1, 5))):
            counter += 1
            maker = draw(st.sampled_from([scalar, helm, merged, kustomize, noise, noise, "marker"]))
            if maker == "marker":
                pieces.append(draw(marker(counter, chosen, digest_marked)))
            else:
                pieces.append(draw(maker(counter, chosen)))  # type: ignore[operator]
        documents.append(pieces)
    if digest_marked & chosen:
        # A `:tag` marker drawn before its app's `:digest` marker: the digest marker decides for the whole file.
        for pieces in documents:
            for piece in pieces:
                for i, line in enumerate(piece.after):
                    for app in digest_marked & chosen:
                        if line.endswith(f'"flux-system:{app}:tag"}}'):
                            piece.after[i] = line.replace(f"{NEW[app]}@{D2}", NEW[app])
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    start = draw(st.sampled_from(["", "---" + newline, "\ufeff", "\ufeff---" + newline]))

    def render(side: str) -> str:
        body = ("---" + newline).join(
            newline.join(line for piece in pieces for line in getattr(piece, side)) + newline
            for pieces in documents
        )
        return start + body

    checks = [[c for p in pieces for c in p.checks] for pieces in documents]
    return File(
        render("before"),
        render("after"),
        chosen,
        checks,
        sum((p.refs for ps in documents for p in ps), Counter()),
    )


def load(text: str) -> list[Any]:
    """The documents as YAML reads them: libyaml when it can (fast), ruamel.yaml's YAML 1.2 parser for what
    libyaml's YAML 1.1 refuses (`{repository: registry.lan:32000/web}`), as tagtrail itself reads files."""
    try:
        return list(YAML(typ="safe", pure=False).load_all(text))
    except YAMLError:
        return list(YAML(typ="safe", pure=True).load_all(text))


@pytest.mark.timeout(900)  # 10,000 examples take about a minute alone; a shared machine may triple that
@settings(max_examples=EXAMPLES)
@given(files())
def test_a_rewrite_changes_exactly_the_intended_value_tokens(file: File) -> None:
    targets = {app: TARGETS[app] for app in file.chosen}
    new, _ = rewrite("deploy.yaml", file.text, M, targets)
    assert new == file.expected
    # rewrite refuses unless each app has as many references after as before; here, as many as generated.
    after = find("deploy.yaml", new, M)
    assert Counter(r.app for r in after) == file.refs
    for ref in after:
        if ref.app in targets and ref.kind not in ("digest", "tag"):
            assert (ref.tag, ref.digest) == (NEW[ref.app], D2)
    loaded = load(new)
    for document, checks in zip(loaded, file.documents, strict=True):
        for check in checks:
            check(document)
