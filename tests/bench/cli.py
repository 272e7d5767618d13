"""Run the tagtrail CLI in-process, as its console script would, and capture what it printed."""

from __future__ import annotations

import pytest

from tagtrail.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `tagtrail ARGS…`."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err
