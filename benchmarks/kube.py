"""Benchmark: from a registry push to the Deployment's spec carrying the new digest (direct mode), beside the
same kind of push's GitOps deploy commit; and the API requests a reconcile makes.

A real control plane (tests/bench/kube.py: kube-apiserver and kube-controller-manager 1.20.2, etcd) with the
stand-in kubelet making Pods ready; a real registry whose notifications go to a running `tagtrail serve` (a
real process). Each push is the CI build of a new commit of app `web`; its latency is measured from the
registry's acceptance of the manifest to
- direct mode: the Deployment's spec naming the new digest (read from the API server every 5 ms);
- GitOps: the deploy commit reaching the bare remote (its branch ref changes), the same project deploying
  to a file in git instead; its pushes come after the direct ones (one registry notifies one serve).
Between pushes the rollout is let finish, so each push starts from a settled cluster.

Requests: a 50-app reconcile reads what runs with a fixed number of list requests (per kind and namespace,
plus Pods), counted by the client; the table states them beside the app count.

Run it with `./scripts/bench kube` (`--pushes N`; `--quick`: 3 pushes and 5 apps).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench.git import commit, git
from bench.kube import ControlPlane
from bench.kubelab import DEPLOYMENT, SCHEME, Lab, deployment, make_lab
from bench.kubelet import Kubelet
from bench.serve import REGISTRY_SECRET, ServeProcess, wait_for
from tagtrail.adapters.kube.cluster import Cluster
from tagtrail.adapters.kube.view import observe
from tagtrail.adapters.refs import Matcher
from tagtrail.config import load_config
from tagtrail.reconcile import Reconciler
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.registry import free_port

SERVE = "serve:\n  interval: 1h\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def spec_digest(plane: ControlPlane, namespace: str) -> str:
    with plane.client() as client:
        body = client.get(DEPLOYMENT, "web", namespace=namespace)
    return str(body["spec"]["template"]["spec"]["containers"][0]["image"]).rpartition("@")[2]


def push_build(lab: Lab, pusher: ImagePusher, prefix: str, n: int) -> tuple[str, float]:
    """A developer's commit of web and its CI build pushed; the digest and when the push was accepted."""
    sha = commit(lab.root, {f"apps/web/bench-{n}.txt": f"{n}\n"}, f"web: change {n}")
    if git(lab.root, "remote").strip():
        git(lab.root, "push", "-q", "origin", "HEAD:main")
    now = datetime.now(UTC).replace(microsecond=0)
    tag = SCHEME.format(branch="main", sha=sha, time=now)
    image = pusher.push_image(
        f"{prefix}/web", tag, created=now, labels={"org.opencontainers.image.revision": sha}
    )
    return image.digest, time.perf_counter()


def direct(plane: ControlPlane, registry: RegistryServer, port: int, work: Path, pushes: int) -> list[float]:
    namespace = "bench-direct"
    plane.create_namespace(namespace)
    with ImagePusher(registry.url) as pusher, Kubelet(plane, namespace, node="bench-direct") as _:
        lab = make_lab(work / "direct", registry, pusher, "direct", namespace, plane.kubeconfig, extra=SERVE)
        with plane.client() as admin:
            admin.create(deployment("web", namespace, [{"name": "web", "image": lab.ref("web", 2)}]))
        serve = ServeProcess(lab.root, port=port).start()
        latencies = []
        try:
            for n in range(pushes):
                time.sleep(1.1)  # the tag's time has seconds: the next build must be newer
                digest, accepted = push_build(lab, pusher, "direct", n)
                while spec_digest(plane, namespace) != digest:
                    if time.perf_counter() - accepted > 60:
                        raise TimeoutError(f"push {n}: the Deployment never named {digest}\n{serve.output()}")
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - accepted)
                print(
                    f"  direct push {n + 1:>2}/{pushes}: {latencies[-1] * 1000:7.0f} ms",
                    file=sys.stderr,
                    flush=True,
                )
                wait_rolled_out(plane, namespace)
        finally:
            serve.stop()
    return latencies


def wait_rolled_out(plane: ControlPlane, namespace: str) -> None:
    def done() -> bool:
        with plane.client() as client:
            body = client.get(DEPLOYMENT, "web", namespace=namespace)
        status, meta = body["status"] or {}, body["metadata"]
        return bool(
            status.get("observedGeneration", 0) >= meta["generation"]
            and status.get("updatedReplicas")
            == status.get("replicas")
            == status.get("availableReplicas")
            == 2
        )

    wait_for(done, 60, "the rollout to finish")


def gitops(plane: ControlPlane, registry: RegistryServer, port: int, work: Path, pushes: int) -> list[float]:
    namespace = "bench-gitops"
    plane.create_namespace(namespace)
    remote = work / "remote.git"
    with ImagePusher(registry.url) as pusher:
        lab = make_lab(
            work / "gitops",
            registry,
            pusher,
            "gitops",
            namespace,
            plane.kubeconfig,
            mode="gitops",
            extra=SERVE,
        )
        git(work, "init", "-q", "--bare", "-b", "main", remote.name)
        git(lab.root, "remote", "add", "origin", str(remote))
        git(lab.root, "push", "-q", "-u", "origin", "main")
        ref = remote / "refs" / "heads" / "main"
        serve = ServeProcess(lab.root, port=port).start()
        latencies = []
        try:
            wait_for(lambda: "deployed web" in serve.output(), 60, "the first deploy")
            for n in range(pushes):
                time.sleep(1.1)
                wait_for(
                    lambda: git(lab.root, "rev-parse", "main") == ref.read_text().strip(),
                    30,
                    "the checkout synced",
                )
                before = ref.read_text().strip()
                _, accepted = push_build(lab, pusher, "gitops", n)
                after_push = ref.read_text().strip()
                while ref.read_text().strip() in (before, after_push):
                    if time.perf_counter() - accepted > 60:
                        raise TimeoutError(f"push {n}: no deploy commit\n{serve.output()}")
                    time.sleep(0.001)
                latencies.append(time.perf_counter() - accepted)
                print(
                    f"  gitops push {n + 1:>2}/{pushes}: {latencies[-1] * 1000:7.0f} ms",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            serve.stop()
    return latencies


def requests_per_reconcile(plane: ControlPlane, work: Path, apps: int) -> tuple[int, int, float]:
    """(requests to read what runs, requests of a direct-mode plan's read of the workloads, seconds) with
    `apps` Deployments in one namespace."""
    namespace = "bench-requests"
    plane.create_namespace(namespace)
    with plane.client() as admin:
        for n in range(apps):
            image = f"registry.lan/bench/app{n}:main.20260101-000000.abcdef{n % 10}@sha256:{n:064x}"
            admin.create(deployment(f"app{n}", namespace, [{"name": "app", "image": image}], replicas=0))
    text = (
        "image: registry.lan/bench/{app}\n"
        "deploy:\n  branch: main\n  kubernetes: {}\n"
        f"kubernetes:\n  kubeconfig: {plane.kubeconfig}\n  namespaces: [{namespace}]\n"
    )
    (work / "requests").mkdir()
    path = work / "requests" / "tagtrail.yaml"
    path.write_text(text)
    config = load_config(path)

    async def count() -> tuple[int, int, float]:
        assert config.kubernetes is not None
        cluster = Cluster(config.kubernetes, Matcher.from_config(config))
        started = time.perf_counter()
        views = await observe(cluster)
        took = time.perf_counter() - started
        assert len(views) == apps, sorted(views)
        observing = cluster.requests
        await cluster.aclose()
        async with Reconciler.open(config, path) as reconciler:
            declared = await reconciler.project.target.declared()
            assert len(declared.states) == apps
            target = reconciler.project.cluster()
            assert target is not None
            return observing, target.requests, took

    return asyncio.run(count())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument(
        "--quick", action="store_true", help="3 pushes and 5 apps: that it runs, not its speed"
    )
    args = parser.parse_args()
    pushes, apps = (3, 5) if args.quick else (args.pushes, args.apps)
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-kube-") as folder, ControlPlane() as plane:
        work = Path(folder)
        port = free_port()
        notify = (f"http://127.0.0.1:{port}/hooks/registry", f"Bearer {REGISTRY_SECRET}")
        with RegistryServer(work / "registry", notify=notify) as registry:
            direct_ms = [s * 1000 for s in direct(plane, registry, port, work, pushes)]
            gitops_ms = [s * 1000 for s in gitops(plane, registry, port, work, pushes)]
        observing, declaring, took = requests_per_reconcile(plane, work, apps)
    print(f"\npush → the cluster, {pushes} pushes each (ms, from the registry accepting the manifest):\n")
    print(f"| {'mode':<38} | {'p50':>7} | {'p95':>7} | {'max':>7} |")
    print(f"|{'-' * 40}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    rows = [
        ("direct: Deployment spec has the digest", direct_ms),
        ("GitOps: deploy commit on the remote", gitops_ms),
    ]
    for name, values in rows:
        print(
            f"| {name:<38} | {statistics.median(values):7.0f} | {percentile(values, 0.95):7.0f} | {max(values):7.0f} |"
        )
    ratio = statistics.median(direct_ms) / statistics.median(gitops_ms)
    print(f"\ndirect / GitOps (p50): {ratio:.2f}x")
    print(f"\nAPI requests with {apps} apps (Deployments) in one namespace:")
    print(f"  reading what runs (status, dashboard): {observing} requests in {took * 1000:.0f} ms")
    print(f"  a direct-mode reconcile's read of the workloads: {declaring} requests")
    print(
        "  (one list per workload kind and namespace, plus one for Pods: the count does not grow with apps)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
