"""The one place git is started: its environment (no prompt, the C locale), a missing git said as such, and
a failure turned into GitError with credentials redacted."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tagtrail.errors import GitError

HEX = re.compile(r"[0-9a-f]{4,64}")


def _environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(extra or {})}


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """git `args` in `cwd`, whatever it answers (text)."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env=_environ(env),
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None


def run_bytes(cwd: Path, *args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """git `args` in `cwd` with bytes in and out (`cat-file --batch` gives each object's size in bytes)."""
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False, env=_environ()
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None


def git(
    cwd: Path, *args: str, strip: bool = True, env: dict[str, str] | None = None, stdin: str | None = None
) -> str:
    """What git `args` printed; GitError (its last line of stderr) when it fails."""
    result = run(cwd, *args, env=env, stdin=stdin)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise GitError(f"git {args[0]} failed in {cwd}: {redact(detail)}")
    return result.stdout.strip() if strip else result.stdout


def redact(text: str) -> str:
    """Credentials in remote URLs (https://user:token@host) never reach a message."""
    return re.sub(r"(://[^/@\s:]+):[^@/\s]+@", r"\1:***@", text)
