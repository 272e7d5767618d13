"""Benchmark: from an image push to the deploy commit on the git remote, with `tagtrail serve` and webhooks.

The real registry sends its notifications to a running `tagtrail serve` (a real process) deploying the
homelab of tests/bench/homelab.py to a bare git remote. 20 images are pushed one after another, each the CI
build of a new commit of one app; the latency of each is measured from the registry's acceptance of the
manifest to the deploy commit reaching the remote (its branch ref changes).

Compared in the same run with:
- the floor: a bare script doing only the unavoidable work after the same kind of push (alternating with
  tagtrail's pushes, so both run on the same machine at the same moment) — one tag list, one
  manifest HEAD, one commit, one push — with no webhook, no policy and no safety;
- polling at a 60 s interval (Keel's default; Argo CD Image Updater's is 2 min). By default it is modelled
  from this run: the wait for the next poll (uniform over the interval, seeded) plus the reconcile time
  tagtrail took for the same push. `--real-polling` runs it for real instead (about 20 minutes).

Also: the resident memory of an idle `tagtrail serve` with 50 apps configured (goal: under 100 MB).

Run it with `./scripts/bench push_to_deploy` (`--pushes N`, `--real-polling`).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench.git import commit, git, init_repo
from bench.homelab import APPS, SCHEME, Homelab, make_homelab
from bench.isolate import isolate
from bench.serve import REGISTRY_SECRET, ServeProcess, serve_env, wait_for
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.registry import free_port

POLL_INTERVAL = 60.0


def ref_file(remote: Path) -> Path:
    return remote / "refs" / "heads" / "main"


def wait_ref_change(remote: Path, before: str, timeout: float) -> float:
    """Spin on the remote's branch ref (a file a push rewrites) and return when it changed."""
    path = ref_file(remote)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if path.read_text().strip() != before:
                return time.perf_counter()
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise TimeoutError(f"no deploy commit on {remote} within {timeout} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def wait_synced(lab: Homelab, remote: Path) -> None:
    """Until tagtrail has fast-forwarded the checkout to the remote's head (its last step after a deploy)."""
    head = ref_file(remote).read_text().strip()
    wait_for(lambda: git(lab.root, "rev-parse", "main") == head, 30, "the checkout to be fast-forwarded")


def source_commit(lab: Homelab, app: str, n: int, remote: Path) -> str:
    """A developer's commit of one app, pushed (after tagtrail fast-forwarded the checkout to its deploy)."""
    wait_synced(lab, remote)
    sha = commit(lab.root, {f"apps/{app}/bench-{n}.txt": f"{n}\n"}, f"{app}: change {n}")
    git(lab.root, "push", "-q", "origin", "main")
    return sha


def measure_tagtrail(
    lab: Homelab,
    registry: RegistryServer,
    remote: Path,
    pushes: int,
    timeout: float,
    after: Callable[[int], None] | None = None,
) -> tuple[list[float], list[str]]:
    latencies, tags = [], []
    with ImagePusher(registry.url) as pusher:
        for n in range(pushes):
            app = APPS[n % len(APPS)]
            sha = source_commit(lab, app, n, remote)
            before = ref_file(remote).read_text().strip()
            tag = SCHEME.format(branch="main", sha=sha, time=datetime.now(UTC).replace(microsecond=0))
            pusher.push_image(f"{lab.prefix}/{app}", tag, created=datetime.now(UTC))
            accepted = time.perf_counter()  # the manifest PUT (the last request of a push) was answered
            latencies.append(wait_ref_change(remote, before, timeout) - accepted)
            tags.append(tag)
            if after is not None:
                # let tagtrail finish its work after the push (fast-forward, dashboard snapshot) first, so the
                # floor does not share the machine with it
                wait_synced(lab, remote)
                time.sleep(0.3)
                after(n)
            print(
                f"  push {n + 1:>2}/{pushes}: {app:<15} {latencies[-1] * 1000:7.0f} ms",
                file=sys.stderr,
                flush=True,
            )
    return latencies, tags


def drained(serve: ServeProcess, quiet: float = 2.0) -> None:
    """Wait until no webhook arrived for `quiet` seconds."""
    last, since = -1.0, time.monotonic()
    while time.monotonic() - since < quiet:
        seen = sum(
            serve.metric("tagtrail_webhook_requests_total", source="registry", outcome=o)
            for o in ("accepted", "ignored")
        )
        if seen != last:
            last, since = seen, time.monotonic()
        time.sleep(0.2)


class Floor:
    """The unavoidable work after a push: one tag list, one manifest HEAD, one commit, one push. Its pushes
    alternate with tagtrail's, so both see the same machine (its repository is one tagtrail ignores)."""

    ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"

    def __init__(self, registry: RegistryServer, work: Path) -> None:
        self.registry = registry
        self.remote = work / "floor.git"
        git(work, "init", "-q", "--bare", "-b", "main", self.remote.name)
        self.clone = init_repo(work / "floor", {"deploy.yaml": "image: none\n"}, "floor")
        git(self.clone, "remote", "add", "origin", self.remote.as_uri())
        git(self.clone, "push", "-q", "-u", "origin", "main")
        self.pusher = ImagePusher(registry.url)
        self.client = httpx.Client(base_url=registry.url)
        self.latencies: list[float] = []

    def once(self, n: int) -> None:
        tag = f"main.{n:04d}"
        self.pusher.push_image("floor/app", tag, created=datetime.now(UTC))
        accepted = time.perf_counter()
        newest = max(self.client.get("/v2/floor/app/tags/list").json()["tags"])
        head = self.client.head(f"/v2/floor/app/manifests/{newest}", headers={"Accept": self.ACCEPT})
        digest = head.headers["Docker-Content-Digest"]
        (self.clone / "deploy.yaml").write_text(f"image: {self.registry.host}/floor/app:{newest}@{digest}\n")
        git(self.clone, "commit", "-qam", f"deploy {newest}")
        git(self.clone, "push", "-q", "origin", "main")
        self.latencies.append(time.perf_counter() - accepted)

    def close(self) -> None:
        self.pusher.close()
        self.client.close()


def reconcile_seconds(serve: ServeProcess) -> list[float]:
    """tagtrail's reconcile durations as its /metrics histogram saw them (sum / count per observation is
    not kept, so the mean is used for every push)."""
    total = serve.metric("tagtrail_reconcile_duration_seconds_sum")
    count = serve.metric("tagtrail_reconcile_duration_seconds_count")
    return [total / count] if count else [0.0]


def modelled_polling(webhook: list[float], seed: int = 1) -> list[float]:
    """Polling every 60 s: a push waits for the next poll (uniform over the interval), then the same work."""
    rng = random.Random(seed)
    return [rng.uniform(0, POLL_INTERVAL) + latency for latency in webhook]


def real_polling(work: Path, pushes: int) -> list[float]:
    """tagtrail serve polling every 60 s with no webhook, for real (slow: about pushes × 60 s)."""
    with RegistryServer(work / "poll-registry") as registry, ImagePusher(registry.url) as pusher:
        lab = make_homelab(
            work / "poll-lab",
            registry,
            pusher,
            "poll",
            tags_per_app=20,
            config_extra="serve:\n  interval: 60s\n  jitter: 0\n",
        )
        remote = work / "poll.git"
        git(work, "init", "-q", "--bare", "-b", "main", remote.name)
        git(lab.root, "remote", "add", "origin", remote.as_uri())
        git(lab.root, "push", "-q", "-u", "origin", "main")
        serve = ServeProcess(lab.root, env=serve_env()).start()
        try:
            wait_for(
                lambda: len(git(remote, "log", "--format=%h", "main").splitlines()) >= 7, 120, "first deploy"
            )
            latencies, _ = measure_tagtrail(lab, registry, remote, pushes, timeout=3 * POLL_INTERVAL)
        finally:
            serve.stop()
    return latencies


def idle_rss(work: Path, apps: int = 50) -> float:
    """VmRSS (MB) of `tagtrail serve` with `apps` apps, idle after its first reconcile."""
    with RegistryServer(work / "rss-registry") as registry, ImagePusher(registry.url) as pusher:
        root = work / "rss"
        names = [f"app{n:02d}" for n in range(apps)]
        files = {f"apps/{name}/Dockerfile": "FROM scratch\n" for name in names}
        files["deploy/values.yaml"] = "".join(
            f"{name}:\n  image: {registry.host}/rss/{name}:bootstrap\n" for name in names
        )
        files["tagtrail.yaml"] = (
            f"scheme: \"{{{{branch}}}}.{{{{date 'YYYYMMDD-HHmmss' tz='UTC'}}}}.{{{{sha}}}}\"\n"
            f"image: {registry.host}/rss/{{app}}\n"
            f'registries:\n  "{registry.host}": {{insecure: true}}\n'
            "apps:\n  root: apps\n"
            "deploy:\n  branch: main\n  git:\n    files: [deploy/values.yaml]\n    push: false\n"
            "serve:\n  interval: 1h\n"
        )
        init_repo(root, files, "fifty apps")
        sha = git(root, "rev-parse", "HEAD")
        for name in names:
            for day in range(3):
                when = datetime(2026, 1, 1 + day, tzinfo=UTC)
                pusher.push_image(
                    f"rss/{name}", SCHEME.format(branch="main", sha=sha, time=when), created=when
                )
        serve = ServeProcess(root).start()
        try:
            wait_for(
                lambda: serve.metric("tagtrail_reconciles_total", result="ok") >= 1,
                120,
                "the first reconcile",
            )
            serve.get("/")  # the dashboard rendered once, as someone would look at it
            time.sleep(3)
            assert serve.process is not None
            status = Path(f"/proc/{serve.process.pid}/status").read_text()
            rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        finally:
            serve.stop()
    return rss_kb / 1024


def row(name: str, values: list[float], floor: list[float] | None, note: str = "") -> str:
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    ratio = (
        f"{p50 / percentile(floor, 0.5):>7.1f}x {p95 / percentile(floor, 0.95):>7.1f}x"
        if floor
        else f"{'':>8} {'':>8}"
    )
    return f"{name:<34} {p50 * 1000:>9.0f} {p95 * 1000:>9.0f} {ratio}  {note}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pushes", type=int, default=20, help="images pushed, one after another")
    parser.add_argument("--real-polling", action="store_true", help="run polling at 60 s for real (slow)")
    parser.add_argument("--tags", type=int, default=200, help="tags per app in the homelab")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-push-") as folder:
        work = Path(folder)
        isolate(work)
        port = free_port()
        hook = (f"http://127.0.0.1:{port}/hooks/registry", f"Bearer {REGISTRY_SECRET}")
        with RegistryServer(work / "registry", notify=hook) as registry, ImagePusher(registry.url) as pusher:
            print("seeding the homelab …", file=sys.stderr, flush=True)
            lab = make_homelab(
                work / "homelab",
                registry,
                pusher,
                "bench",
                tags_per_app=args.tags,
                config_extra="serve:\n  interval: 1h\n",
            )
            remote = work / "remote.git"
            git(work, "init", "-q", "--bare", "-b", "main", remote.name)
            git(lab.root, "remote", "add", "origin", remote.as_uri())
            git(lab.root, "push", "-q", "-u", "origin", "main")
            serve = ServeProcess(lab.root, port=port).start()
            try:
                wait_for(
                    lambda: "deploy: 8 apps" in git(remote, "log", "-1", "--format=%s", "main"),
                    120,
                    "the first deploy",
                )
                drained(serve)  # the registry's notifications of the seeding are all delivered
                print(
                    f"pushing {args.pushes} images, one after another (webhook → tagtrail serve), each followed by the floor's:",
                    file=sys.stderr,
                    flush=True,
                )
                floor_run = Floor(registry, work)
                webhook, _ = measure_tagtrail(
                    lab, registry, remote, args.pushes, timeout=60, after=floor_run.once
                )
                floor = floor_run.latencies
                floor_run.close()
                mean_reconcile = reconcile_seconds(serve)[0]
            finally:
                code = serve.stop()
        if args.real_polling:
            print("polling at 60 s for real …", file=sys.stderr, flush=True)
            polling = real_polling(work, args.pushes)
            polling_note = "measured"
        else:
            polling = modelled_polling(webhook)
            polling_note = "modelled: next poll (uniform 0–60 s) + this run's latency"
        print("idle memory with 50 apps …", file=sys.stderr, flush=True)
        rss = idle_rss(work)

    header = f"{'push → deploy commit on the remote':<34} {'p50 ms':>9} {'p95 ms':>9} {'p50/floor':>8} {'p95/floor':>8}"
    print("\n" + header)
    print(row("floor (tag list, HEAD, commit, push)", floor, None, "a bare script, no webhook"))
    print(
        row(
            "tagtrail serve + registry webhook",
            webhook,
            floor,
            f"mean reconcile {mean_reconcile * 1000:.0f} ms",
        )
    )
    print(row("polling every 60 s", polling, floor, polling_note))
    web50, poll50 = percentile(webhook, 0.5), percentile(polling, 0.5)
    ok = [
        percentile(webhook, 0.5) <= 2 * percentile(floor, 0.5),
        percentile(webhook, 0.95) <= 3 * percentile(floor, 0.95),
        poll50 >= 30 * web50,
        rss < 100,
        code == 0,
    ]
    print(
        f"\nwebhook vs polling: {poll50 / web50:.0f}x faster at p50 (goal ≥ 30x); "
        f"webhook p50 {percentile(webhook, 0.5) / percentile(floor, 0.5):.2f}x the floor (goal ≤ 2x), "
        f"p95 {percentile(webhook, 0.95) / percentile(floor, 0.95):.2f}x (goal ≤ 3x)."
    )
    print(f"idle RSS of tagtrail serve with 50 apps: {rss:.0f} MB (goal < 100 MB)")
    print(
        f"{args.pushes} pushes; {'all goals met' if all(ok) else 'NOT all goals met'}; mean {statistics.mean(webhook) * 1000:.0f} ms"
    )
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
