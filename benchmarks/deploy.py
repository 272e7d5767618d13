"""Benchmark: plan and deploy 8 apps with 1,000 tags each, against the real registry and a real git remote.

The homelab is DESIGN.md's shape (tests/bench/homelab.py): a Pulumi stack file with nested keys, an alias,
third-party images; per app, builds of main (the newest a multi-arch index), a rebuild, many builds of other
branches and tags of other schemes. tagtrail runs `plan`, then `deploy` (one commit, pushed). The baseline is
the script a user writes today: per app `skopeo list-tags`, pick the newest main tag, `skopeo inspect` it for
its digest, `sed` it into the file; then one commit and a push. Requests are counted at the registry.

Run it with `./scripts/bench deploy` (`--tags N` for another size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench.git import git
from bench.homelab import APPS, Homelab, make_homelab
from bench.isolate import isolate
from tagtrail.config import load_config
from tagtrail.reconcile import Planned, Reconciler, Report
from tagtrail_demo import ImagePusher, RegistryServer


def count(log: Path, agent: str, offset: int) -> tuple[int, int]:
    data = log.read_bytes()
    return sum(1 for line in data[offset:].splitlines() if f'"{agent}/'.encode() in line), len(data)


def baseline(lab: Homelab, clone: Path) -> None:
    """What users script today, one app after the other."""
    stack = clone / "pulumi" / "Pulumi.prod.yaml"
    text = stack.read_text()
    for app in APPS:
        listing = subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", f"docker://{lab.image}/{app}"],
            capture_output=True,
            text=True,
            check=True,
        )
        main = [t for t in json.loads(listing.stdout)["Tags"] if t.startswith("main.")]
        newest = max(main, key=lambda t: t.split(".")[1])
        digest = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{lab.image}/{app}:{newest}"],
            capture_output=True,
            check=True,
        ).stdout
        manifest_digest = (
            subprocess.run(
                ["skopeo", "manifest-digest", "/dev/stdin"], input=digest, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )
        for host in (lab.image, "registry.lan:32000"):  # the tag and digest change; the name stays as written
            text = text.replace(f"{host}/{app}:bootstrap", f"{host}/{app}:{newest}@{manifest_digest}")
    stack.write_text(text)
    git(clone, "commit", "-qam", "deploy by script")
    git(clone, "push", "-q", "origin", "main")


async def _plan(path: Path) -> list[Planned]:
    async with Reconciler.open(load_config(path), path) as reconciler:
        return await reconciler.plan(actor="bench")


async def _deploy(path: Path) -> Report:
    async with Reconciler.open(load_config(path), path) as reconciler:
        return await reconciler.run(actor="bench")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tags", type=int, default=1000, help="tags per app")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo is not installed: run ./scripts/setup", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-deploy-") as folder:
        work = Path(folder)
        isolate(work)
        with (
            RegistryServer(work / "registry", access_log=True) as registry,
            ImagePusher(registry.url) as pusher,
        ):
            print(f"seeding {len(APPS)} apps × {args.tags} tags …", file=sys.stderr, flush=True)
            lab = make_homelab(work / "homelab", registry, pusher, "bench", tags_per_app=args.tags)
            remote = work / "remote.git"
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
            git(lab.root, "remote", "add", "origin", remote.as_uri())
            git(lab.root, "push", "-q", "-u", "origin", "main")
            script_remote = work / "script-remote.git"  # the script works on its own copy of the same history
            git(work, "clone", "-q", "--bare", remote.as_uri(), script_remote.name)
            clone = work / "script-clone"
            git(work, "clone", "-q", script_remote.as_uri(), clone.name)
            offset = registry.log_path.stat().st_size

            path = (lab.root / "tagtrail.yaml").resolve()
            started = time.perf_counter()
            planned = asyncio.run(_plan(path))
            t_plan = time.perf_counter() - started
            plan_requests, offset = count(registry.log_path, "tagtrail", offset)
            assert all(p.decision.action == "deploy" for p in planned)
            started = time.perf_counter()
            report = asyncio.run(_deploy(path))
            t_deploy = time.perf_counter() - started
            deploy_requests, offset = count(registry.log_path, "tagtrail", offset)
            assert report.applied.pushed
            assert len(report.changed) == len(APPS)

            started = time.perf_counter()
            baseline(lab, clone)
            t_base = time.perf_counter() - started
            base_requests, offset = count(registry.log_path, "skopeo", offset)
            ours = git(remote, "show", "main:pulumi/Pulumi.prod.yaml")
            theirs = git(script_remote, "show", "main:pulumi/Pulumi.prod.yaml")
            same = ours == theirs

    total = t_plan + t_deploy
    print(f"\n{'step':<34} {'wall s':>8} {'requests':>9} {'req/app':>8} {'vs script':>10}")
    print(f"{'tagtrail plan':<34} {t_plan:>8.2f} {plan_requests:>9} {plan_requests / len(APPS):>8.1f}")
    print(
        f"{'tagtrail deploy (plan+commit+push)':<34} {t_deploy:>8.2f} {deploy_requests:>9} "
        f"{deploy_requests / len(APPS):>8.1f} {t_base / t_deploy:>9.1f}x"
    )
    print(
        f"{'script: skopeo, sed, git':<34} {t_base:>8.2f} {base_requests:>9} {base_requests / len(APPS):>8.1f} {1.0:>9.1f}x"
    )
    print(
        f"\n{len(APPS)} apps × {args.tags} tags; plan then deploy took {total:.2f} s. The script's file "
        f"{'equals' if same else 'DIFFERS from'} tagtrail's: same images, same digests."
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
