"""A killed test run leaves no control plane behind: a pytest that brings the bench up (tests/bench/kube.py)
and is then sent SIGTERM, SIGINT or SIGHUP stops etcd, kube-apiserver and kube-controller-manager before it
dies, though they run in process groups of their own.

The three runs start together; the SIGTERM one is killed as soon as its last process is spawned, the others
while their kube-apiserver starts: the test costs about one control plane's start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

from bench.kube import CACHE, BenchMissing, binaries

TESTS = Path(__file__).resolve().parents[2]
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # kill, Ctrl-C, a closed terminal
CONTROL_PLANE = {"etcd", "kube-apiserver", "kube-controller-manager"}

INNER = """\
import time

from bench.kube import ControlPlane


def test_the_bench_is_up_until_killed() -> None:
    ControlPlane().start()
    while True:
        time.sleep(1)  # until the outer test sends its signal
"""


def processes() -> dict[int, tuple[int, int, str]]:
    """pid → (parent, process group, program) of every process that is not a zombie, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            # the command may hold spaces and parentheses: the fields after the last ")" are fixed
            state, parent, group = stat.read_text().rpartition(")")[2].split()[:3]
            program = (stat.parent / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if state != "Z":
                found[int(stat.parent.name)] = (int(parent), int(group), Path(program).name)
    return found


def spawned(run: subprocess.Popen[bytes], log: Path, wanted: set[str]) -> list[int]:
    """The run's control-plane processes, once those `wanted` are there."""
    deadline = time.monotonic() + 120
    while True:
        children = {pid: p for pid, (parent, _, p) in processes().items() if parent == run.pid}
        if set(children.values()) >= wanted:
            return [pid for pid, program in children.items() if program in CONTROL_PLANE]
        if run.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the inner test run did not bring the bench up; its output:\n{log.read_text()}")
        time.sleep(0.05)


def test_a_killed_test_run_stops_its_control_plane(tmp_path: Path) -> None:
    try:
        binaries()
    except BenchMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "TAGTRAIL_CACHE": str(CACHE.parents[1]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"]
    runs: dict[signal.Signals, tuple[subprocess.Popen[bytes], Path]] = {}
    planes: dict[signal.Signals, list[int]] = {}
    try:
        for signum in SIGNALS:
            log = tmp_path / f"{signum.name}.log"
            with log.open("wb") as out:
                run = subprocess.Popen(
                    argv, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            runs[signum] = (run, log)
        for signum, (run, log) in runs.items():
            # SIGTERM once all three run; the others while kube-apiserver starts, which spares two of the
            # three starts of kube-apiserver (most of the cost) and kills a bench midway through its start
            wanted = CONTROL_PLANE if signum == signal.SIGTERM else {"etcd", "kube-apiserver"}
            planes[signum] = spawned(run, log, wanted)
            run.send_signal(signum)
        for signum, (run, log) in runs.items():
            assert run.wait(timeout=60) != 0
            now = processes()
            left = [pid for pid in planes[signum] if pid in now]
            left += [pid for pid, (_, group, _) in now.items() if group == run.pid]
            assert not left, f"{signum.name} left {left} running; the inner run said:\n{log.read_text()}"
    finally:
        for run, _ in runs.values():
            with suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        now = processes()
        for pid in (p for found in planes.values() for p in found if p in now):
            if now[pid][2] in CONTROL_PLANE:  # only the bench's own: a pid may have been reused since
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
