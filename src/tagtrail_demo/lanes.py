"""`tagtrail demo --environments`: a build goes to staging, soaks there, is promoted to prod; a bad build is
rolled back in staging and never reaches prod, which keeps the good one. Real registry, real git remote,
the commands a user types, each with its output (builds are synthetic images: the point is the lanes)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail_demo import RegistryServer
from tagtrail_demo.monorepo import make_sample_repo
from tagtrail_demo.run import DemoResult, Say, _Demo, _synthetic_build, with_remote

SOAK = 5  # seconds: long enough to see, short enough to wait for

_LANES = """\
deploy:
  branch: main
environments:
  staging:
    git:
      files: [pulumi/Pulumi.staging.yaml]
  prod:
    from: staging         # only builds that ran well in staging
    soak: {soak}s           # ... rolled out, and not rolled back, for this long
    git:
      files: [pulumi/Pulumi.prod.yaml]
"""


def run_lanes_demo(workdir: Path, say: Say, *, keep: bool = False) -> DemoResult:
    """Every step, narrated through `say`; the registry stops at the end unless `keep`."""
    demo = _Demo(workdir, say)
    registry = RegistryServer(workdir / "registry")
    registry.start()
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        repo = make_sample_repo(workdir / "homelab", registry.host, start=start)
        config = repo.root / "tagtrail.yaml"
        text = config.read_text()
        lanes = text[: text.index("deploy:\n")] + _LANES.format(soak=SOAK)
        stack = (repo.root / "pulumi" / "Pulumi.prod.yaml").read_text()
        repo.commit(
            "Deploy through staging, then prod",
            {"tagtrail.yaml": lanes, "pulumi/Pulumi.staging.yaml": stack},
            when=start + timedelta(hours=1),
        )
        with_remote(workdir, repo)
        say(
            f"## 1. Two environments\nA registry on {registry.url}; a monorepo at {repo.root} whose tagtrail.yaml"
            f" deploys to staging (Pulumi.staging.yaml), and to prod (Pulumi.prod.yaml) only what ran well in"
            f" staging for {SOAK} s:"
        )
        say(_LANES.format(soak=SOAK).rstrip())
        say("## 2. Builds of main, pushed as CI pushes them (synthetic images)")
        _synthetic_build(demo, repo, registry, None)
        say("## 3. Deploy: staging takes the new builds; prod waits for them to soak there")
        demo.tagtrail(repo.root, "deploy")
        demo.tagtrail(repo.root, "status")
        _wait(say)
        say("## 4. The soak is over: the same deploy promotes them to prod, with the evidence in the commit")
        demo.tagtrail(repo.root, "deploy")
        trailers = "key=Tagtrail-App,key=Tagtrail-Reason,key=Tagtrail-Promoted-From,key=Tagtrail-Evidence"
        demo.git(repo, "log", "-1", f"--format=%(trailers:{trailers})", "origin/main")
        say("## 5. A bad build of worker reaches staging, and fails there: roll it back in staging")
        repo.commit(
            "worker: a bad change", {"apps/worker/worker.py": "raise SystemExit(1)\n"}, when=datetime.now(UTC)
        )
        repo.git("push", "-q", "origin", "main")
        _synthetic_build(demo, repo, registry, ["worker"])
        demo.tagtrail(repo.root, "deploy")
        demo.tagtrail(repo.root, "rollback", "worker", "--env", "staging")
        _wait(say)
        say("## 6. The soak passes; the bad build never reaches prod, which keeps the good one")
        demo.tagtrail(repo.root, "deploy")
        demo.tagtrail(repo.root, "status")
        demo.tagtrail(repo.root, "history", "worker", "--env", "prod")
        deploys = len(
            [
                line
                for line in repo.git("log", "--format=%s", "origin/main").splitlines()
                if line.startswith(("deploy", "rollback"))
            ]
        )
        if keep:
            say(f"The registry keeps running at {registry.url}; the monorepo is at {repo.root}.")
        return DemoResult(workdir, registry.host, "the registry API (synthetic)", deploys)
    finally:
        if not keep:
            registry.stop()


def _wait(say: Say) -> None:
    say(f"(waiting {SOAK} s: the soak)")
    time.sleep(SOAK + 0.5)
