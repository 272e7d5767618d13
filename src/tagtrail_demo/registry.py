"""A real CNCF distribution registry (Debian's `docker-registry`) on a free loopback port.

Used by `tagtrail demo` and by the test suite. Storage lives in a folder of the caller's; delete is enabled;
with `users`, clients must authenticate with HTTP basic auth against an htpasswd file (bcrypt, as
distribution requires).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from tagtrail.errors import SandboxError

REGISTRY_BINARY = "docker-registry"
_INSTALL_HINT = "install it with `apt-get install docker-registry apache2-utils` (./scripts/setup does this)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    """One bcrypt htpasswd entry, made by apache2-utils' htpasswd."""
    if shutil.which("htpasswd") is None:
        raise SandboxError(f"htpasswd not found: {_INSTALL_HINT}")
    result = subprocess.run(
        ["htpasswd", "-nbB", "-C", "5", user, password], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SandboxError(f"htpasswd failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _clean_env() -> dict[str, str]:
    """The environment without REGISTRY_* variables: distribution reads each as a config override, and
    podman's and skopeo's REGISTRY_AUTH_FILE would otherwise break its `auth` section."""
    return {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}


@dataclass
class RegistryServer:
    """A running registry; use as a context manager or call start() and stop()."""

    root: Path
    users: dict[str, str] = field(default_factory=dict)
    extra_config: str = ""  # more top-level sections (e.g. token `auth:` or `notifications:`)
    tls: tuple[Path, Path] | None = None  # certificate and key: serve HTTPS
    shared_storage: Path | None = None  # serve another registry's storage (distribution scales out this way)
    access_log: bool = False  # one line per request in log_path (benchmarks count requests with it)
    notify: tuple[str, str] | None = None  # (URL, Authorization header): send push notifications there
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """host:port, the way image references name this registry."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    @property
    def storage(self) -> Path:
        return self.shared_storage or self.root / "storage"

    def start(self, timeout: float = 20.0, *, same_port: bool = False) -> RegistryServer:
        """Start serving; with `same_port`, on the port of the last start (image names stay valid)."""
        if shutil.which(REGISTRY_BINARY) is None:
            raise SandboxError(f"{REGISTRY_BINARY} not found: {_INSTALL_HINT}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        for _ in range(5):
            self.port = self.port if same_port and self.port else free_port()
            config = self.root / "config.yml"
            config.write_text(self._config())
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [REGISTRY_BINARY, "serve", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_clean_env(),
                )
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise SandboxError(f"the registry did not start; its log: {self.log_path}\n{self._log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def garbage_collect(self, *flags: str) -> str:
        """distribution's garbage collection, with the registry stopped as its documentation asks (no write
        may race the mark phase), then started again on the same port. Returns what it printed."""
        self.stop()
        done = subprocess.run(
            [REGISTRY_BINARY, "garbage-collect", *flags, str(self.root / "config.yml")],
            capture_output=True,
            text=True,
            check=False,
            env=_clean_env(),
        )
        self.start(same_port=True)
        if done.returncode != 0:
            raise SandboxError(f"garbage-collect failed: {(done.stderr or done.stdout).strip()[-500:]}")
        return done.stdout

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _config(self) -> str:
        auth = ""
        if self.users:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            auth = f"auth:\n  htpasswd:\n    realm: tagtrail-sandbox\n    path: {htpasswd}\n"
        tls = f"  tls:\n    certificate: {self.tls[0]}\n    key: {self.tls[1]}\n" if self.tls else ""
        return (
            "version: 0.1\n"
            f"log:\n  level: warn\n  accesslog:\n    disabled: {'false' if self.access_log else 'true'}\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            "  maintenance:\n    uploadpurging:\n      enabled: false\n"
            f"http:\n  addr: {self.host}\n  secret: {secrets.token_hex(16)}\n{tls}"
            f"{auth}{self._notifications()}{self.extra_config}"
        )

    def _notifications(self) -> str:
        """Push events to `notify` (tagtrail serve's /hooks/registry), as a user's registry would."""
        if self.notify is None:
            return ""
        url, authorization = self.notify
        return (
            "notifications:\n  events:\n    includereferences: true\n  endpoints:\n"
            "    - name: tagtrail\n"
            f"      url: {url}\n"
            f"      headers:\n        Authorization: [{json.dumps(authorization)}]\n"
            "      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
            "      ignoredmediatypes: [application/octet-stream]\n"
            "      ignore:\n        actions: [pull]\n"
        )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                # Readiness only: the sandbox's own certificate is checked by the clients under test.
                status = httpx.get(f"{self.url}/v2/", timeout=1.0, verify=False).status_code  # noqa: S501
            except httpx.TransportError:
                status = 0
            if status in (200, 401):
                return True
            time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return "(no log)"
