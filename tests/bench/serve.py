"""`tagtrail serve` as a real process, a registry that notifies it, and a receiver standing in for ntfy/Slack.

- `ServeProcess`: runs `python -m tagtrail serve` in a folder with its own environment, waits for /readyz,
  stops it with a signal and returns its exit code; its output is kept for assertions and failures.
- `Receiver`: an HTTP server on loopback that records what apprise's json:// posts to it (the double for
  ntfy, Slack, Discord: nothing real of theirs can run here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from bench.git import Remote, commit, git
from bench.homelab import SCHEME, Homelab
from bench.httpserver import serve, stop
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.registry import free_port

REGISTRY_SECRET = "registry-hook-secret-7f3a"
GITHUB_SECRET = "github-hook-secret-91c2"
WEBHOOK_TOKEN = "generic-hook-token-55de"
DASHBOARD_TOKEN = "dashboard-token-0b6e-5d21a9c4e7f3b81a"  # 36 characters: serve refuses fewer than 32


def serve_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TAGTRAIL_REGISTRY_WEBHOOK_SECRET=REGISTRY_SECRET,
        TAGTRAIL_GITHUB_WEBHOOK_SECRET=GITHUB_SECRET,
        TAGTRAIL_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        TAGTRAIL_TOKEN=DASHBOARD_TOKEN,
    )
    env.update(extra or {})
    return env


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class ServeProcess:
    cwd: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=serve_env)
    args: tuple[str, ...] = ()
    process: subprocess.Popen[str] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, ready: bool = True, timeout: float = 60.0) -> ServeProcess:
        self.log_path = self.cwd.parent / f"serve-{self.port}.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tagtrail", *self.args, "serve", "--port", str(self.port)],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        log.close()
        if ready:
            wait_for(self._ready, timeout, f"tagtrail serve to be ready\n{self.output()}")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"tagtrail serve exited with {self.process.returncode}:\n{self.output()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def send(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"tagtrail serve did not stop on {sig.name}:\n{self.output()}") from None
        code = self.process.returncode
        self.process = None
        return code

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kwargs)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample in /metrics (0 when absent)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.get("/metrics").text.splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            sample, _, rest = key.partition("{")
            found = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if sample == name and found == wanted:
                return float(value)
        return 0.0


class Receiver:
    """Records the JSON bodies posted to it: what apprise's json:// sends (title, message, type)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with received.lock:
                    received.raw.append(body)
                    received.messages.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.lock = threading.Lock()
        self.server = serve(Handler, "notify-receiver")

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_port}/notify"

    def titles(self) -> list[str]:
        with self.lock:
            return [m.get("title", "") for m in self.messages]

    def close(self) -> None:
        stop(self.server)


def remote_log(remote: Remote) -> list[str]:
    return git(remote.path, "log", "--format=%H %s", "main").splitlines()


def ci_run(lab: Homelab, registry: RegistryServer, apps: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """What a CI run does: a commit that changes `apps`, pushed, then one image per app pushed."""
    sha = commit(
        lab.root, {f"apps/{app}/change.txt": f"{uuid.uuid4()}\n" for app in apps}, "change " + " ".join(apps)
    )
    git(lab.root, "push", "-q", "origin", "main")
    tag = SCHEME.format(branch="main", sha=sha, time=datetime.now(UTC).replace(microsecond=0))
    digests = {}
    with ImagePusher(registry.url) as pusher:
        for app in apps:
            digests[app] = pusher.push_image(f"{lab.prefix}/{app}", tag, created=datetime.now(UTC)).digest
    return tag, digests
