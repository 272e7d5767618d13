"""The worst inputs the fuzz tests know, each parsed in a child process whose address space is capped:
memory stays bounded where a naive reader would expand aliases, recurse or copy without limit.

A MemoryError (or the child killed) is the failure; the refusals the parsers document are fine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap

import pytest

LIMIT = 1024 * 1024 * 1024  # the address space of the child: the interpreter and its imports use ~300 MiB

WORST = textwrap.dedent(
    """
    import json
    from tagtrail.config import parse_config
    from tagtrail.errors import TagtrailError
    from tagtrail.adapters.refs import Matcher, find
    from tagtrail.domain.scheme import Scheme
    from tagtrail.serve.web.hooks import distribution_pushes, generic_push, github_pushes

    from test_fuzz_config import DEEP, DEEP_BLOCK, LAUGHS, WIDE

    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\\n" for p, c in zip("abcdefghijklmnop", "bcdefghijklmnopq")
    )
    refs = "".join(f"k{i}: ghcr.io/acme/homelab/web:main.20251014-051038.185c95c\\n" for i in range(20_000))
    matcher = Matcher("ghcr.io/acme/homelab/{app}")
    event = {"action": "push", "target": {"repository": "a/b", "tag": "v1", "mediaType": "x"}}
    body = json.dumps({"events": [event] * 10_000}).encode()  # about 1 MiB: serve's max_body
    calls = [
        *(lambda t=t: parse_config(t) for t in (LAUGHS, laughs, DEEP, DEEP_BLOCK, WIDE)),
        *(lambda t=t: find("f.yaml", t, matcher) for t in (laughs, DEEP, refs, "- " * 200_000)),
        lambda: distribution_pushes(body),
        lambda: distribution_pushes(b"[" * 1_000_000),
        lambda: github_pushes("package", b"{\\"a\\":" * 200_000),
        lambda: generic_push(json.dumps({"image": "x" * 1_000_000}).encode()),
        lambda: Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}").parse("a." * 500_000),
    ]
    for call in calls:
        try:
            call()
        except TagtrailError:
            pass
    print("ok", len(calls))
    """
)


def cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


@pytest.mark.timeout(600)
def test_the_worst_known_inputs_parse_in_bounded_memory(request: pytest.FixtureRequest) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WORST],
        cwd=request.path.parent,
        env={**os.environ, "PYTHONPATH": str(request.path.parent.parent)},  # tests/, for bench
        preexec_fn=cap,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok ")
