"""DESIGN invariant 8, at every step: `tagtrail deploy` and `tagtrail rollback` killed (SIGKILL) at each git
invocation (just before it runs, and just after it finished) and at each registry request, then run again,
converge to the state a run without a crash reaches: the same remote tree, one commit (no duplicate, none
lost), no local commit left to push, no stray worktree, no held lock.

The steps are enumerated, not guessed: a clean run first counts its git invocations (a `git` wrapper first
on PATH logs each) and its registry requests (a proxy in front of the registry records each); the crash
runs then kill tagtrail at each of those. The kill comes from outside tagtrail, as a node's OOM killer or a
`kubectl delete pod --force` would: the wrapper kills the tagtrail process, or the proxy stalls the Nth
request while the test kills it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.faultproxy import Fault, FaultProxy
from bench.git import git
from bench.homelab import Homelab, make_homelab
from tagtrail_demo import ImagePusher, RegistryServer

pytestmark = pytest.mark.timeout(1800)  # a hundred-odd runs of tagtrail, each killed and run again

WRAPPER = """#!/bin/sh
# a git that counts its calls, and kills tagtrail at call {at} ({when} it runs)
n=$(flock {dir}/lock sh -c 'n=$(($(cat {dir}/count 2>/dev/null || echo 0) + 1)); echo $n > {dir}/count; echo $n')
echo "$n $*" >> {dir}/calls
if [ "$n" = "{at}" ] && [ "{when}" = before ]; then kill -9 "$(cat {dir}/pid)"; kill -9 $$; fi
{git} "$@"
status=$?
if [ "$n" = "{at}" ] && [ "{when}" = after ]; then kill -9 "$(cat {dir}/pid)"; fi
exit $status
"""


@dataclass
class Copy:
    """A copy of the lab's checkout and its remote, so each crash starts from the same state."""

    root: Path
    remote: Path
    commits: tuple[str, ...] = ()  # the source commits of the lab, oldest first

    def log(self) -> list[str]:
        return git(self.remote, "log", "--format=%H %s", "main").splitlines()

    def tree(self) -> str:
        return git(self.remote, "rev-parse", "main^{tree}")

    def trailers(self) -> str:
        return git(self.remote, "log", "-1", "--format=%(trailers:key=Tagtrail-App,key=Tagtrail-To)", "main")

    def worktrees(self) -> list[str]:
        listed = git(self.root, "worktree", "list", "--porcelain").splitlines()
        return sorted(
            line.removeprefix("worktree ").replace(str(self.root), "ROOT")
            for line in listed
            if line.startswith("worktree ")
        )

    def unpushed(self) -> list[str]:
        git(self.root, "fetch", "-q", "origin")
        return git(self.root, "rev-list", "origin/main..main").splitlines()

    def lock_is_free(self) -> bool:
        lock = self.root / ".git/tagtrail.lock"
        if not lock.exists():
            return True
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def copy_of(state: Copy, where: Path) -> Copy:
    copy = Copy(where / "checkout", where / "remote.git", state.commits)
    shutil.copytree(state.remote, copy.remote, symlinks=True)
    shutil.copytree(state.root, copy.root, symlinks=True)
    git(copy.root, "remote", "set-url", "origin", f"file://{copy.remote}")
    return copy


@dataclass
class Runner:
    """Runs tagtrail as its own process, with a counting git first on PATH."""

    tmp: Path
    real_git: str

    def run(self, copy: Copy, args: list[str], *, at: int = 0, when: str = "before") -> tuple[int, list[str]]:
        """tagtrail ARGS in `copy`, killed at git call `at` (0: never): its exit code and its git calls."""
        counter = Path(self.tmp / f"git-{time.monotonic_ns()}")
        (counter / "bin").mkdir(parents=True)
        wrapper = counter / "bin/git"
        wrapper.write_text(WRAPPER.format(at=at, when=when, dir=counter, git=self.real_git))
        wrapper.chmod(0o755)
        env = {**os.environ, "PATH": f"{counter / 'bin'}:{os.environ['PATH']}"}
        process = self.start(copy, args, env, counter / "pid")
        code = process.wait(120)
        calls = (counter / "calls").read_text().splitlines() if (counter / "calls").exists() else []
        return code, calls

    def start(
        self, copy: Copy, args: list[str], env: dict[str, str], pidfile: Path
    ) -> subprocess.Popen[bytes]:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            ["sh", "-c", f'echo $$ > {pidfile}; exec "$@"', "sh", sys.executable, "-m", "tagtrail", *args],
            cwd=copy.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


@pytest.fixture
def proxied(registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def start(tmp_path: Path, registry: RegistryServer, proxied: FaultProxy, repo_name: str) -> Copy:
    """A homelab whose config reaches the registry through the proxy, pushed to a bare remote."""
    behind = SimpleNamespace(host=proxied.host, url=f"http://{proxied.host}")
    with ImagePusher(registry.url) as pusher:
        lab: Homelab = make_homelab(
            tmp_path / "lab",
            behind,
            pusher,
            repo_name.replace("/", "-"),
            tags_per_app=6,  # type: ignore[arg-type]
        )
    remote = tmp_path / "lab-remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(lab.root, "remote", "add", "origin", f"file://{remote}")
    git(lab.root, "push", "-q", "-u", "origin", "main")
    return Copy(lab.root, remote, tuple(lab.commits))


def converged(copy: Copy, clean: Copy, base: int) -> None:
    log = copy.log()
    assert len(log) == len(clean.log()) == base + 1, log[:3]
    assert copy.tree() == clean.tree()
    assert copy.trailers() == clean.trailers()
    assert copy.unpushed() == []
    assert copy.worktrees() == clean.worktrees()
    assert copy.lock_is_free()


def rerun(runner: Runner, copy: Copy, args: list[str], clean: Copy, base: int, crash: str) -> list[str]:
    """Runs `args` again after `crash`; what did not converge, if anything."""
    code, _ = runner.run(copy, args)
    try:
        assert code == 0
        converged(copy, clean, base)
    except AssertionError as exc:
        return [f"{crash}: {exc}"]
    return []


def crash_everywhere(tmp_path: Path, proxied: FaultProxy, before: Copy, args: list[str]) -> tuple[int, int]:
    """Runs `args` cleanly, then killed at each of its git calls (before and after) and registry requests,
    each followed by a run without a crash; returns how many git calls and registry requests it had."""
    runner = Runner(tmp_path / "runs", shutil.which("git") or "/usr/bin/git")
    base = len(before.log())
    clean = copy_of(before, tmp_path / "clean")
    proxied.requests.clear()
    code, calls = runner.run(clean, args)
    assert code == 0
    requests = len(proxied.requests)
    assert len(clean.log()) == base + 1
    assert calls
    assert requests
    failures: list[str] = []
    for when in ("before", "after"):
        for at in range(1, len(calls) + 1):
            copy = copy_of(before, tmp_path / f"{when}-{at}")
            code, _ = runner.run(copy, args, at=at, when=when)
            assert code == -signal.SIGKILL, f"git call {at} ({calls[at - 1]}) was never reached"
            failures += rerun(
                runner, copy, args, clean, base, f"killed {when} git call {at} ({calls[at - 1]})"
            )
    for at in range(1, requests + 1):
        copy = copy_of(before, tmp_path / f"registry-{at}")
        stall = proxied.add(Fault("stall", seconds=60, times=1, skip=at - 1))
        pidfile = tmp_path / f"registry-{at}.pid"
        process = runner.start(copy, args, dict(os.environ), pidfile)
        deadline = time.monotonic() + 60
        while stall.hits == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL, f"registry request {at} was never reached"
        proxied.faults.remove(stall)
        failures += rerun(runner, copy, args, clean, base, f"killed at registry request {at}")
    assert not failures, "\n".join(failures)
    return len(calls), requests


def test_deploy_killed_at_any_step_converges_on_the_rerun(
    tmp_path: Path, proxied: FaultProxy, start: Copy
) -> None:
    calls, requests = crash_everywhere(tmp_path, proxied, start, ["deploy"])
    print(f"deploy: killed before and after each of {calls} git calls, and at each of {requests} requests")


def test_rollback_killed_at_any_step_converges_on_the_rerun(
    tmp_path: Path, proxied: FaultProxy, start: Copy
) -> None:
    deployed = copy_of(start, tmp_path / "deployed")
    code, _ = Runner(tmp_path / "first", shutil.which("git") or "/usr/bin/git").run(deployed, ["deploy"])
    assert code == 0
    git(deployed.root, "pull", "-q", "--ff-only", "origin", "main")
    older = deployed.commits[2][:9]  # rollback to a commit: its newest eligible build, pinned in one commit
    calls, requests = crash_everywhere(tmp_path, proxied, deployed, ["rollback", "chime", "--to", older])
    print(f"rollback: killed before and after each of {calls} git calls, and at each of {requests} requests")
