"""More than one `tagtrail serve` against the real API server, each as a real process with a kubeconfig of
a ServiceAccount token (as a Pod would have): a Lease elects one leader; killed with SIGKILL, a follower
takes over within the lease duration and deploys a push that arrived meanwhile exactly once; cut off from the
API server, a leader stops writing before its lease can expire (the fence) and the follower takes over."""

from __future__ import annotations

import json
import re
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from lightkube import ApiError, Client
from lightkube.models.rbac_v1 import PolicyRule
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event

from bench.git import commit
from bench.kube import ControlPlane
from bench.kubelab import SCHEME, Lab, NewLab, deployment, make_lab, spec_images
from bench.kubelet import Kubelet
from bench.serve import REGISTRY_SECRET, ServeProcess, serve_env, wait_for
from bench.tcpproxy import TcpProxy
from tagtrail.sandbox import ImagePusher, RegistryServer
from tagtrail.sandbox.registry import free_port

LEASE = "  leader_election: {{namespace: {namespace}, duration: 4s, renew_deadline: 2500ms, retry: 500ms}}\n"
RULES = [
    PolicyRule(apiGroups=["apps"], resources=["deployments"], verbs=["get", "list", "watch", "patch"]),
    PolicyRule(apiGroups=["apps"], resources=["statefulsets", "daemonsets"], verbs=["list"]),
    PolicyRule(apiGroups=["apps"], resources=["replicasets"], verbs=["list"]),
    PolicyRule(apiGroups=["batch"], resources=["cronjobs"], verbs=["list"]),
    PolicyRule(apiGroups=[""], resources=["pods"], verbs=["list"]),
    PolicyRule(apiGroups=[""], resources=["events"], verbs=["create"]),
    PolicyRule(apiGroups=["coordination.k8s.io"], resources=["leases"], verbs=["get", "create", "update"]),
]


@pytest.fixture
def lab(new_lab: NewLab, namespace: str, admin: Client, kubelet: Kubelet) -> Lab:
    made = new_lab(extra="serve:\n  interval: 1h\n" + LEASE.format(namespace=namespace))
    admin.create(deployment("web", namespace, [{"name": "web", "image": made.ref("web", 0)}]))
    return made


def replica(lab: Lab, name: str, kubeconfig: Path, port: int | None = None) -> ServeProcess:
    """A serve process with its own state (decision log, caches) and its own kubeconfig, in the project's
    checkout (its tagtrail-NAME.yaml is tagtrail.yaml pointing at `kubeconfig`)."""
    folder = lab.root.parent / name
    folder.mkdir(exist_ok=True)
    config = (lab.root / "tagtrail.yaml").read_text()
    config = re.sub(r"  kubeconfig: .*", f"  kubeconfig: {kubeconfig}", config)
    (lab.root / f"tagtrail-{name}.yaml").write_text(config)
    env = serve_env(
        {"POD_NAME": name, "XDG_STATE_HOME": str(folder / "state"), "XDG_CACHE_HOME": str(folder / "cache")}
    )
    process = ServeProcess(lab.root, env=env, args=("--config", f"tagtrail-{name}.yaml"))
    if port is not None:
        process.port = port
    return process.start(ready=False)


def holder(admin: Client, namespace: str) -> str:
    try:
        lease = admin.get(Lease, "tagtrail", namespace=namespace)
    except ApiError as error:
        if error.status.code == 404:
            return ""
        raise
    return (lease.spec.holderIdentity or "") if lease.spec else ""


def deploy_events(admin: Client, namespace: str, tag: str) -> int:
    return sum(
        1
        for e in admin.list(Event, namespace=namespace)
        if e.reason == "TagtrailDeploy" and tag in (e.message or "")
    )


def push_build(lab: Lab, pusher: ImagePusher, n: int) -> str:
    sha = commit(lab.root, {f"apps/web/change-{n}.txt": f"{n}\n"}, f"web: change {n}")
    now = datetime.now(UTC).replace(microsecond=0)
    tag = SCHEME.format(branch="main", sha=sha, time=now)
    image = pusher.push_image(
        lab.image.split("/", 1)[1] + "/web",
        tag,
        created=now,
        labels={"org.opencontainers.image.revision": sha},
    )
    return f"{lab.image}/web:{tag}@{image.digest}"


def token_kubeconfig(
    control_plane: ControlPlane, namespace: str, folder: Path, server: str | None = None
) -> Path:
    token = control_plane.service_account_token(namespace, "tagtrail", RULES)
    config = control_plane.kubeconfig_dict(token)
    if server is not None:
        config["clusters"][0]["cluster"]["server"] = server
    path = folder / f"kubeconfig-{len(list(folder.glob('kubeconfig-*')))}"
    path.write_text(json.dumps(config))
    return path


def test_a_follower_takes_over_from_a_killed_leader_and_deploys_the_push_once(
    lab: Lab, control_plane: ControlPlane, admin: Client, pusher: ImagePusher, tmp_path: Path
) -> None:
    kubeconfig = token_kubeconfig(control_plane, lab.namespace, tmp_path)
    first = replica(lab, "replica-a", kubeconfig)
    second = ServeProcess(lab.root)
    try:
        wait_for(lambda: holder(admin, lab.namespace).startswith("replica-a"), 30, "replica-a to lead")
        second = replica(lab, "replica-b", kubeconfig)
        wait_for(
            lambda: spec_images(admin, "web", lab.namespace) == [lab.ref("web", 2)], 30, "the leader's deploy"
        )
        wait_for(
            lambda: "is now the leader" not in second.output() and "tagtrail serve:" in second.output(),
            30,
            "b up",
        )
        time.sleep(1.0)
        assert holder(admin, lab.namespace).startswith("replica-a")
        assert "deployed" not in second.output()  # the follower wrote nothing

        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.process.wait()
        image = push_build(lab, pusher, 1)  # arrives while nobody leads
        wait_for(lambda: holder(admin, lab.namespace).startswith("replica-b"), 30, "replica-b to lead")
        took_over = time.monotonic() - killed
        assert took_over < 4 + 2 * 0.5 + 2  # the lease duration, a retry or two, and the API's latency
        wait_for(lambda: spec_images(admin, "web", lab.namespace) == [image], 30, "the push deployed by b")
        time.sleep(2.0)  # long enough for a second deploy, if anything would make one
        tag = image.rpartition("@")[0].rpartition(":")[2]
        assert deploy_events(admin, lab.namespace, tag) == 1
        assert "tagtrail_leader 1.0" in httpx.get(f"{second.url}/metrics", timeout=5).text
    finally:
        for process in (first, second):
            if process.process is not None and process.process.poll() is None:
                process.stop()


def test_a_leader_cut_off_from_the_api_server_stops_writing_before_its_lease_expires(
    lab: Lab, control_plane: ControlPlane, admin: Client, pusher: ImagePusher, tmp_path: Path
) -> None:
    server = control_plane.url.rsplit(":", 1)
    with TcpProxy("127.0.0.1", int(server[1])) as proxy:
        cut = token_kubeconfig(control_plane, lab.namespace, tmp_path, f"https://127.0.0.1:{proxy.port}")
        direct = tmp_path / "direct.kubeconfig"
        config = json.loads(cut.read_text())
        config["clusters"][0]["cluster"]["server"] = control_plane.url
        direct.write_text(json.dumps(config))
        first = replica(lab, "replica-a", cut)
        second = ServeProcess(lab.root)
        try:
            wait_for(lambda: holder(admin, lab.namespace).startswith("replica-a"), 30, "replica-a to lead")
            second = replica(lab, "replica-b", direct)
            wait_for(
                lambda: spec_images(admin, "web", lab.namespace) == [lab.ref("web", 2)],
                30,
                "the first deploy",
            )
            proxy.block()
            wait_for(
                lambda: "replica-a" in first.output() and "is no longer the leader" in first.output(),
                30,
                "a steps down",
            )
            wait_for(lambda: holder(admin, lab.namespace).startswith("replica-b"), 30, "replica-b to lead")
            stepped_down = stamp(first.output(), "is no longer the leader")
            took_over = stamp(second.output(), "is now the leader")
            assert stepped_down < took_over  # the fence: a stops before b may write
            image = push_build(lab, pusher, 1)
            second.send(signal.SIGHUP)  # a reload: b reconciles every app again (as a webhook would make it)
            wait_for(lambda: spec_images(admin, "web", lab.namespace) == [image], 30, "b deploys the push")
            assert "deployed" not in first.output().split("is no longer the leader", 1)[1]
        finally:
            proxy.unblock()
            for process in (first, second):
                if process.process is not None and process.process.poll() is None:
                    process.stop()


def stamp(output: str, what: str) -> datetime:
    for line in output.splitlines():
        if what in line:
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    raise AssertionError(f"no line with {what!r} in:\n{output}")


def test_a_webhook_that_reaches_a_follower_is_passed_to_the_leader(
    tmp_path: Path,
    repo_name: str,
    namespace: str,
    kubeconfig: Path,
    control_plane: ControlPlane,
    admin: Client,
    kubelet: Kubelet,
) -> None:
    """The registry notifies the follower only (a Service may send a webhook to any replica): the follower
    passes it to the leader's generic hook, and the leader deploys at once (its poll is an hour away)."""
    follower_port = free_port()
    notify = (f"http://127.0.0.1:{follower_port}/hooks/registry", f"Bearer {REGISTRY_SECRET}")
    with (
        RegistryServer(tmp_path / "notifying", notify=notify) as registry,
        ImagePusher(registry.url) as pusher,
    ):
        lab = make_lab(
            tmp_path / "project",
            registry,
            pusher,
            repo_name.replace("/", "-"),
            namespace,
            kubeconfig,
            extra="serve:\n  interval: 1h\n" + LEASE.format(namespace=namespace),
        )
        admin.create(deployment("web", namespace, [{"name": "web", "image": lab.ref("web", 0)}]))
        token = token_kubeconfig(control_plane, lab.namespace, tmp_path)
        first = replica(lab, "replica-a", token)
        second = ServeProcess(lab.root)
        try:
            wait_for(lambda: holder(admin, namespace).startswith("replica-a"), 30, "replica-a to lead")
            wait_for(
                lambda: spec_images(admin, "web", namespace) == [lab.ref("web", 2)], 30, "the first deploy"
            )
            second = replica(lab, "replica-b", token, port=follower_port)
            wait_for(second._ready, 30, "replica-b to be ready")
            image = push_build(lab, pusher, 1)
            wait_for(
                lambda: spec_images(admin, "web", namespace) == [image], 20, "the leader to deploy the push"
            )
            assert "passed a registry webhook for web to the leader" in second.output()
            assert "deployed" not in second.output()
        finally:
            for process in (first, second):
                if process.process is not None and process.process.poll() is None:
                    process.stop()
