"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

kube-apiserver and kube-controller-manager are v1.20.2, built by `scripts/kube` from Debian bookworm's
`kubernetes` source package and cached in $TAGTRAIL_CACHE/kube/bin (no registry these machines reach ships
them); etcd is Debian's `etcd-server`. Everything listens on free loopback ports and lives in one temporary
folder that `stop()` removes. Each process runs in a process group of its own, which `stop()` ends, as do
the process's exit (atexit) and SIGTERM, SIGINT and SIGHUP (bench/processes.py): a killed test run leaves
nothing behind. The API server runs with RBAC and a static token file: `admin` is in `system:masters`; service-account tokens
are signed with a key made here and checked by the API server. The stand-in kubelet is in bench/kubelet.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import tempfile
import time
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.core_v1 import Namespace, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from bench.pki import KeyPair, certificate_authority, server_certificate, signing_key
from bench.processes import Process, register, unregister
from tagtrail_demo import free_port

CACHE = Path(os.environ.get("TAGTRAIL_CACHE", "/var/cache/tagtrail-ci")) / "kube" / "bin"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager")


class BenchMissing(RuntimeError):
    """A binary the control plane needs is not installed or not built."""


def binaries(cache: Path = CACHE) -> dict[str, Path]:
    """The control plane's executables, or BenchMissing naming the command that installs them."""
    found = {name: cache / name for name in CONTROL_PLANE}
    etcd = shutil.which("etcd")
    missing = [str(path) for path in found.values() if not os.access(path, os.X_OK)]
    if etcd is None:
        missing.append("etcd")
    if missing:
        raise BenchMissing(
            f"the Kubernetes test bench is not built ({', '.join(missing)} missing): run ./scripts/kube "
            "(./scripts/test does; the first build takes about ten minutes)"
        )
    assert etcd is not None
    return {**found, "etcd": Path(etcd)}


@dataclass(eq=False)
class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager; a context manager, or start() and stop()."""

    cache: Path = CACHE
    root: Path = field(init=False)
    url: str = field(init=False, default="")
    admin_token: str = field(init=False, default="")
    ca: KeyPair = field(init=False, repr=False)
    _processes: list[Process] = field(init=False, default_factory=list, repr=False)

    @property
    def kubeconfig(self) -> Path:
        """A kubeconfig file for `admin` (system:masters)."""
        return self.root / "admin.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.root / "pki" / "ca.crt"

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts this API server's certificate (and nothing else)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def kubeconfig_dict(self, token: str, user: str = "bench") -> dict[str, Any]:
        """A kubeconfig that reaches this API server with a bearer token, checking its certificate."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "bench",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": b64encode(self.ca.cert_pem()).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": user}}],
            "current-context": "bench",
        }

    def create_namespace(self, name: str, timeout: float = 30.0) -> None:
        """A namespace whose `default` ServiceAccount has its token, so Pods can be created at once (the
        ServiceAccount admission plugin refuses them until the token controller has done its part)."""
        with self.client() as client:
            client.create(Namespace(metadata=ObjectMeta(name=name)))
            deadline = time.monotonic() + timeout
            while True:
                try:
                    account = client.get(ServiceAccount, "default", namespace=name)
                    if account.secrets:
                        return
                except ApiError as error:
                    if error.status.code != 404:
                        raise
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"namespace {name}: no default ServiceAccount token after {timeout:.0f} s"
                    )
                time.sleep(0.05)

    def service_account_token(self, namespace: str, name: str, rules: list[PolicyRule]) -> str:
        """The token of a new ServiceAccount bound to a Role of exactly `rules` in `namespace`, as a Pod
        running as it would have (the token controller's Secret)."""
        with self.client() as client:
            client.create(ServiceAccount(metadata=ObjectMeta(name=name, namespace=namespace)))
            client.create(Role(metadata=ObjectMeta(name=name, namespace=namespace), rules=rules))
            client.create(
                RoleBinding(
                    metadata=ObjectMeta(name=name, namespace=namespace),
                    roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name=name),
                    subjects=[Subject(kind="ServiceAccount", name=name, namespace=namespace)],
                )
            )
        return self.account_token(namespace, name)

    def account_token(self, namespace: str, name: str, timeout: float = 30.0) -> str:
        """The token the token controller made for a ServiceAccount (what its Pods would mount)."""
        with self.client() as client:
            deadline = time.monotonic() + timeout
            while True:
                account = client.get(ServiceAccount, name, namespace=namespace)
                if account.secrets:
                    secret = client.get(Secret, account.secrets[0].name, namespace=namespace)
                    if secret.data and "token" in secret.data:
                        return b64decode(secret.data["token"]).decode()
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"no token for ServiceAccount {namespace}/{name} after {timeout:.0f} s"
                    )
                time.sleep(0.05)

    def client(self) -> Client:
        """A synchronous lightkube client as `admin` (the bench's own plumbing; tests use AsyncClient)."""
        return Client(KubeConfig.from_file(self.kubeconfig), field_manager="tagtrail-bench")

    def start(self, timeout: float = 60.0) -> ControlPlane:
        exe = binaries(self.cache)
        self.root = Path(tempfile.mkdtemp(prefix="tagtrail-kube-"))
        register(self)
        try:
            self._start(exe, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, exe: dict[str, Path], timeout: float) -> None:
        pki = self.root / "pki"
        self.ca = certificate_authority("tagtrail kube bench CA")
        self.ca.write(pki, "ca")
        serving_cert, serving_key = server_certificate(self.ca).write(pki, "apiserver")
        sa_key, sa_pub = signing_key(pki, "sa")
        self.admin_token = secrets.token_urlsafe(24)
        manager_token = secrets.token_urlsafe(24)
        # The controller manager runs every controller with its own credentials
        # (--use-service-account-credentials=false), so it needs more than system:kube-controller-manager.
        (pki / "tokens.csv").write_text(
            f'{self.admin_token},admin,uid-admin,"system:masters"\n'
            f'{manager_token},system:kube-controller-manager,uid-kcm,"system:masters"\n'
        )

        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = self._spawn(
            "etcd",
            [
                str(exe["etcd"]),
                "--name=bench",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=bench=http://127.0.0.1:{peer_port}",
                "--logger=zap",
                "--log-level=warn",
            ],
        )
        self._wait(etcd, f"{etcd_url}/health", timeout, verify=False)

        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(exe["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                "--insecure-port=0",  # 1.20 would otherwise also listen on 127.0.0.1:8080
                f"--cert-dir={self.root / 'certs'}",
                f"--tls-cert-file={serving_cert}",
                f"--tls-private-key-file={serving_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--allow-privileged=true",
                "--profiling=false",
            ],
        )
        self._wait(apiserver, f"{self.url}/readyz", timeout, token=self.admin_token)
        self.kubeconfig.write_text(json.dumps(self.kubeconfig_dict(self.admin_token, "admin"), indent=2))
        manager_config = self.root / "controller-manager.kubeconfig"
        manager_config.write_text(
            json.dumps(self.kubeconfig_dict(manager_token, "system:kube-controller-manager"))
        )

        manager_port = free_port()
        manager = self._spawn(
            "kube-controller-manager",
            [
                str(exe["kube-controller-manager"]),
                f"--kubeconfig={manager_config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={manager_port}",
                "--port=0",  # 1.20 would otherwise also listen on 0.0.0.0:10252
                f"--cert-dir={self.root / 'certs'}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={self.ca_file}",
                "--controllers=*",
                "--profiling=false",
            ],
        )
        # The controller manager's own certificate is self-signed: only its liveness is checked here.
        self._wait(manager, f"https://127.0.0.1:{manager_port}/healthz", timeout, verify=False)

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.root / f"{name}.log")
        self._processes.append(process)
        process.start()
        return process

    def _wait(
        self, process: Process, url: str, timeout: float, *, token: str = "", verify: bool = True
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not process.running():
                raise RuntimeError(f"{process.name} exited at start; its log:\n{process.tail()}")
            try:
                response = httpx.get(
                    url, headers=headers, timeout=2.0, verify=self.ssl_context() if verify else False
                )
            except httpx.TransportError as error:
                last = repr(error)
            else:
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            time.sleep(0.1)
        raise RuntimeError(
            f"{process.name} not ready after {timeout:.0f} s ({url}: {last}); log:\n{process.tail()}"
        )

    def stop(self) -> None:
        unregister(self)
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if hasattr(self, "root"):
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
