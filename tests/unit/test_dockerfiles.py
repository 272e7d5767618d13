"""The base image of a Dockerfile: a corpus of Dockerfiles shaped as real projects write them (and tagtrail's
own), then every form BuildKit reads, one at a time, and the errors, each one line with file and line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tagtrail.adapters.dockerfiles import Base, DockerfileError, final_base, read, stages

CORPUS = Path(__file__).parents[1] / "fixtures" / "dockerfiles"
NODE_DIGEST = "sha256:0f5e3e9b5bd2b4d1e1b0b2f7a4b7e5f1c1a9c8d3e2f1a0b9c8d7e6f5a4b3c2d1"


@pytest.mark.parametrize(
    ("name", "image", "line", "via"),
    [
        ("go-distroless", "gcr.io/distroless/static:nonroot", 12, ()),
        ("python-wheels", "python:3.12-slim-bookworm", 6, ("base",)),
        ("heredoc-node", f"docker.io/library/node:20-bookworm-slim@{NODE_DIGEST}", 7, ()),
        ("escape-dotnet", "mcr.microsoft.com/dotnet/aspnet:8.0", 9, ()),
        ("scratch-static", None, 6, ()),
        ("nginx-static", "nginxinc/nginx-unprivileged:1.27-alpine", 6, ()),
        ("tagtrail", "python:3.11-slim-bookworm", 16, ()),
    ],
)
def test_the_corpus(name: str, image: str | None, line: int, via: tuple[str, ...]) -> None:
    base = read(CORPUS / f"{name}.Dockerfile")
    assert (base.image, base.line, base.via) == (image, line, via)


def test_the_corpus_is_all_tested() -> None:
    assert len(list(CORPUS.glob("*.Dockerfile"))) == 7


def test_a_digest_in_the_dockerfile_is_a_pin() -> None:
    pinned = read(CORPUS / "heredoc-node.Dockerfile")
    assert pinned.pinned
    assert pinned.digest == NODE_DIGEST
    assert not read(CORPUS / "go-distroless.Dockerfile").pinned


def test_build_args_override_the_defaults_of_meta_args() -> None:
    base = read(CORPUS / "python-wheels.Dockerfile", {"PYTHON": "3.13", "OTHER": "x"})
    assert base.image == "python:3.13-slim-bookworm"
    own = read(CORPUS / "tagtrail.Dockerfile", {"BASE": "127.0.0.1:5000/debian:bookworm"})
    assert own.image == "127.0.0.1:5000/debian:bookworm"


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("FROM alpine:3.20\n", {}, "alpine:3.20"),
        ("FROM alpine AS a\nFROM a AS b\nFROM b\n", {}, "alpine"),  # stage names, followed
        ("FROM alpine AS Build\nFROM build\n", {}, "alpine"),  # stage names are case-insensitive
        ("ARG V=1\nFROM img:$V\n", {}, "img:1"),
        ("ARG V=1\nFROM img:${V}\n", {"V": "2"}, "img:2"),
        ("ARG V\nFROM img:${V:-9}\n", {}, "img:9"),  # declared, no value: the default form's word
        ("ARG V=\nFROM img:${V:-9}\n", {}, "img:9"),
        ("ARG V=\nFROM img${V-:8}\n", {}, "img"),  # `-` (no colon): set-but-empty counts as set
        ("ARG V=x\nFROM img${V:+:7}\n", {}, "img:7"),
        (
            "FROM img:$UNDECLARED\n",
            {"UNDECLARED": "1"},
            "img:",
        ),  # a build arg undeclared before FROM is unseen
        ('ARG B="python:3.12"\nFROM $B\n', {}, "python:3.12"),  # quotes go
        ("ARG B=x\nFROM 'lit$B'\n", {}, "lit$B"),  # single quotes: no expansion
        ("ARG A=1 B=2\nFROM r:$A.$B\n", {}, "r:1.2"),
        ("ARG A=1\nARG B=$A.0\nFROM r:$B\n", {}, "r:1.0"),
        ("FROM --platform=$BUILDPLATFORM golang AS g\nFROM --platform=linux/arm64 alpine\n", {}, "alpine"),
        ("FROM alpine\\\n:3.20\n", {}, "alpine:3.20"),  # a line continuation
        ("# escape=`\nFROM alpine`\n:3\n", {}, "alpine:3"),  # the escape parser directive
        ("FROM alpine\nRUN <<EOF\nFROM busybox\nEOF\n", {}, "alpine"),  # a heredoc is not an instruction
        ("from alpine as x\nfrom x\n", {}, "alpine"),  # instructions are case-insensitive
        ("FROM alpine AS alpine\nFROM alpine\n", {}, "alpine"),  # a stage named as its own base
    ],
)
def test_forms(text: str, args: dict[str, str], expected: str) -> None:
    assert final_base(text, "Dockerfile", args).image == expected


def test_scratch_and_a_platform() -> None:
    assert final_base("FROM busybox AS b\nFROM --platform=linux/amd64 scratch\n", "D") == Base(
        None, 2, (), "linux/amd64"
    )
    assert final_base("ARG P=linux/arm64\nFROM --platform=$P alpine\n", "D").platform == "linux/arm64"


def test_every_stage_in_order() -> None:
    found = stages(CORPUS.joinpath("go-distroless.Dockerfile").read_text(), "D", {"TARGETARCH": "arm64"})
    assert [(s.base, s.name, s.line) for s in found] == [
        ("golang:1.22-alpine", "build", 3),
        ("gcr.io/distroless/static:nonroot", None, 12),
    ]
    assert found[0].platform == "$BUILDPLATFORM"  # the builder's: known only where it builds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM alpine\nRUN <<EOF\nnever ends\n", "apps/web/Dockerfile:2: unterminated heredoc"),
        ("# escape=x\nFROM a\n", "apps/web/Dockerfile:1: invalid escape token"),
        ("# only a comment\n", "apps/web/Dockerfile:1: file with no instructions"),
        ("RUN echo\n", "apps/web/Dockerfile:1: has no FROM instruction"),
        ("FROM\n", "apps/web/Dockerfile:1: 'FROM' is not FROM IMAGE [AS NAME]"),
        ("FROM a b c\n", "apps/web/Dockerfile:1: 'FROM a b c' is not FROM IMAGE [AS NAME]"),
        ("ARG BASE\n\nFROM $BASE\n", "apps/web/Dockerfile:3: '$BASE' expands to nothing"),
        ("ARG 9x=1\nFROM a\n", "apps/web/Dockerfile:1: ARG '9x' is not a variable name"),
    ],
)
def test_what_cannot_be_read_is_one_line_with_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        final_base(text, "apps/web/Dockerfile")
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match=r"^.*missing/Dockerfile: cannot be read: No such file"):
        read(tmp_path / "missing" / "Dockerfile")
    binary = tmp_path / "Dockerfile"
    binary.write_bytes(b"FROM alpine\nRUN echo \xff\n")
    with pytest.raises(DockerfileError, match=r"Dockerfile:2: is not UTF-8 text$"):
        read(binary)


def test_without_buildkits_parser_a_dockerfile_is_one_line_that_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parser's wheels are x86-64 only: elsewhere tagtrail installs without it (a pyproject marker) and
    says so, instead of failing to install or to import."""
    monkeypatch.setitem(sys.modules, "dockerfile", None)  # what `import dockerfile` meets where it is absent
    with pytest.raises(
        DockerfileError, match=r"^apps/web/Dockerfile: cannot be read on this machine: .*annotations"
    ):
        stages("FROM python:3.12-slim\n", "apps/web/Dockerfile")
