"""More than one `tagtrail serve` against the real API server, each as a real process with a kubeconfig of
a ServiceAccount token (as a Pod would have): a Lease elects one leader; killed with SIGKILL, a follower
takes over within the lease duration and deploys a push that arrived meanwhile exactly once; cut off from the
API server, a leader stops writing before its lease can expire (the fence) and the follower takes over."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from lightkube import ApiError, Client
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import Container, PodSpec, Toleration
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event, Node, Pod, ServiceAccount
from lightkube.types import PatchType

from bench.git import commit
from bench.httpserver import serve, stop
from bench.kube import ControlPlane
from bench.kubelab import SCHEME, Lab, NewLab, deployment, make_lab, spec_images
from bench.kubelet import Kubelet
from bench.serve import REGISTRY_SECRET, WEBHOOK_TOKEN, ServeProcess, serve_env, wait_for
from bench.tcpproxy import TcpProxy
from tagtrail.adapters.kube.lease import ADDRESS, Elector
from tagtrail.config.kubernetes import KubernetesConfig, LeaderElectionConfig
from tagtrail.serve.controller.signouts import LeaseStore
from tagtrail.serve.web.auth import Sessions
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.registry import free_port

LEASE = "  leader_election: {{namespace: {namespace}, duration: 4s, renew_deadline: 2500ms, retry: 500ms}}\n"
REPLICA_SECRET = "replica-secret-" + "5" * 32
RULES = [
    PolicyRule(apiGroups=["apps"], resources=["deployments"], verbs=["get", "list", "watch", "patch"]),
    PolicyRule(apiGroups=["apps"], resources=["statefulsets", "daemonsets"], verbs=["list"]),
    PolicyRule(apiGroups=["apps"], resources=["replicasets"], verbs=["list"]),
    PolicyRule(apiGroups=["batch"], resources=["cronjobs"], verbs=["list"]),
    PolicyRule(apiGroups=[""], resources=["pods"], verbs=["list", "get"]),
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
        {
            "POD_NAME": name,
            "XDG_STATE_HOME": str(folder / "state"),
            "XDG_CACHE_HOME": str(folder / "cache"),
            "TAGTRAIL_REPLICA_SECRET": REPLICA_SECRET,
        }
    )
    process = ServeProcess(lab.root, env=env, args=("--config", f"tagtrail-{name}.yaml"))
    if port is not None:
        process.port = port
    return process.start(ready=False)


@pytest.fixture
def replica_pods(admin: Client, namespace: str) -> Iterator[Callable[..., None]]:
    """Makes the Pod a replica runs as, as the API shows it to the others: named as its POD_NAME, its IP
    the loopback address it serves on. It sits on a Node of its own that no kubelet tends (the stand-in
    kubelet would report another IP), tolerating that Node's taints."""
    node = f"replicas-{namespace}"[:63]
    admin.create(Node(metadata=ObjectMeta(name=node)))

    def make(name: str, account: str | None = None) -> None:
        spec = PodSpec(
            serviceAccountName=account,
            nodeName=node,
            automountServiceAccountToken=False,
            tolerations=[Toleration(operator="Exists")],
            containers=[Container(name="tagtrail", image="registry.lan:5000/tagtrail:0.1.0")],
        )
        admin.create(Pod(metadata=ObjectMeta(name=name, namespace=namespace), spec=spec))
        status = {"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}}
        admin.patch(Pod.Status, name, status, namespace=namespace, patch_type=PatchType.MERGE)

    yield make
    admin.delete(Node, node)


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
    lab: Lab,
    control_plane: ControlPlane,
    admin: Client,
    pusher: ImagePusher,
    tmp_path: Path,
    replica_pods: Callable[..., None],
) -> None:
    replica_pods("replica-a")
    replica_pods("replica-b")  # a follower believes a holder of its own service account
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
        # … and its dashboard shows the leader's decision log (its own has nothing)
        page = httpx.get(f"{second.url}/apps/web", timeout=10).text
        assert "No decision recorded yet" not in page
        assert "is newer than" in page

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
    replica_pods: Callable[..., None],
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
        replica_pods("replica-a")
        replica_pods("replica-b")  # a follower believes a holder of its own service account
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


class FakeLeader:
    """Whatever the Lease's address points to: records each request (method, path, Authorization) and
    answers the decision log in a shape tagtrail does not write (a newer version, or a liar)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        found = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                found.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
                body = json.dumps([{"app": "web", "verdict": "the leader says so"}]).encode()
                self.send_response(200 if self.command == "GET" else 202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = serve(Handler, "fake-leader")
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def claim(admin: Client, namespace: str, address: str, renewed: datetime, pod: str = "ghost") -> None:
    """The Lease as someone who may update it leaves it: held by `pod` (ghost), with `address` on it."""
    meta = ObjectMeta(name="tagtrail", namespace=namespace, annotations={ADDRESS: address})
    spec = LeaseSpec(holderIdentity=f"{pod}_0badc0de", leaseDurationSeconds=120, renewTime=renewed)
    try:
        lease = admin.get(Lease, "tagtrail", namespace=namespace)
    except ApiError:
        admin.create(Lease(metadata=meta, spec=spec))
        return
    assert lease.metadata is not None
    lease.metadata.annotations = {ADDRESS: address}
    lease.spec = spec
    admin.replace(lease)


def test_a_follower_sends_to_and_believes_only_the_leader_the_api_proves(
    new_lab: NewLab,
    namespace: str,
    admin: Client,
    control_plane: ControlPlane,
    tmp_path: Path,
    replica_pods: Callable[..., None],
) -> None:
    """Whoever may update the Lease used to choose where followers send the webhook token and whose decisions
    their dashboards show. Now a follower sends (with the replicas' own secret) only to http://IP:PORT of the
    Pod that holds a current Lease, and shows a leader's answer only in the shape it reads."""
    lab = new_lab(extra="serve:\n  interval: 1h\n" + LEASE.format(namespace=namespace).replace("4s", "60s"))
    admin.create(deployment("web", namespace, [{"name": "web", "image": lab.ref("web", 0)}]))
    fake = FakeLeader()
    replica_pods("replica-b")
    claim(admin, namespace, f"{fake.url}/steal?to=", datetime.now(UTC))
    follower = replica(lab, "replica-b", token_kubeconfig(control_plane, namespace, tmp_path))
    hook = {"image": f"{lab.image}/web", "tag": None}
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}

    def webhook(why: str) -> None:
        said = follower.output().count("cannot be passed on")
        assert (
            httpx.post(f"{follower.url}/hooks/generic", json=hook, headers=headers, timeout=10).status_code
            == 202
        )
        wait_for(lambda: follower.output().count("cannot be passed on") > said, 20, "the follower to keep it")
        assert why in follower.output()

    try:
        wait_for(follower._ready, 30, "replica-b to be ready")
        webhook("it is not http://IP:PORT")
        claim(admin, namespace, fake.url, datetime.now(UTC))  # the right shape, but no Pod holds it
        wait_for(lambda: f"no Pod {namespace}/ghost holds the Lease" in follower.output(), 20, "the Pod read")
        webhook("no leader address proven")
        assert "No decision recorded yet" in httpx.get(f"{follower.url}/apps/web", timeout=10).text
        assert fake.seen == []  # nothing, neither token nor a question, went where the Lease pointed

        admin.create(ServiceAccount(metadata=ObjectMeta(name="grafana", namespace=namespace)))
        replica_pods("grafana-0", account="grafana")  # another app's Pod, at the address on the Lease
        claim(admin, namespace, fake.url, datetime.now(UTC), pod="grafana-0")
        wait_for(
            lambda: "grafana-0 does not run as this replica's service account" in follower.output(),
            20,
            "the holder's account compared",
        )
        webhook("no leader address proven")
        assert fake.seen == []
        claim(admin, namespace, fake.url, datetime.now(UTC))

        replica_pods("ghost")  # now the API proves it: the holder's Pod has that IP
        wait_for(lambda: f"the leader serves at {fake.url}" in follower.output(), 20, "the address proven")
        assert (
            httpx.post(f"{follower.url}/hooks/generic", json=hook, headers=headers, timeout=10).status_code
            == 202
        )
        wait_for(lambda: fake.seen, 20, "the webhook passed to the proven leader")
        assert fake.seen == [
            ("POST", "/internal/hint", f"Bearer {REPLICA_SECRET}")
        ]  # never the webhook token
        page = httpx.get(f"{follower.url}/apps/web", timeout=10)
        assert page.status_code == 200
        assert "No decision recorded yet" in page.text  # its own log: the answer is not in a shape it reads
        assert "the leader says so" not in page.text
        assert fake.seen[-1][:2] == ("GET", "/internal/decisions?app=web&limit=50")
        assert "another shape" in follower.output()

        asked = len(fake.seen)
        claim(
            admin, namespace, fake.url, datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
        )  # expired: renewed long ago
        wait_for(
            lambda: "not believed (the Lease is not current)" in follower.output(), 20, "the expiry seen"
        )
        webhook("no leader address proven")
        assert len(fake.seen) == asked
    finally:
        follower.stop()
        stop(fake.server)


def test_a_sign_out_on_a_follower_holds_on_the_leader_and_after_a_restart(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """A sign-out used to hold only on the replica that made it, until it restarted: the cookie stayed good
    for the rest of its 12 hours on the others. Now it is an annotation of the Lease every replica reads."""
    token = "t" * 40
    cluster = KubernetesConfig(
        kubeconfig=str(token_kubeconfig(control_plane, namespace, tmp_path)), namespaces=[namespace]
    )
    settings = LeaderElectionConfig(namespace=namespace)
    leader, follower, restarted = (Elector(settings, cluster, name=f"{n}_1") for n in ("a", "b", "c"))
    on_leader, on_follower, after = (
        Sessions(token, store=LeaseStore(e)) for e in (leader, follower, restarted)
    )

    async def go() -> None:
        try:
            await leader.step()
            await follower.step()
            login = on_leader.sign_in(token, "sam")
            assert login is not None
            assert on_follower.get(login.id) is not None  # one sign-in, good on every replica
            assert on_follower.sign_out(login.id)
            await on_follower.publish()  # a follower writes the Lease while the leader renews it
            await leader.step()
            assert leader.leading
            assert on_leader.get(login.id) is None
            await restarted.step()
            assert after.get(login.id) is None
        finally:
            for elector in (leader, follower, restarted):
                await elector.release()

    asyncio.run(go())
