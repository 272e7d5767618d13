"""The observed-rollout gate on the real control plane: staging is a Deployment kubectl applies from git
(GitOps + observe), prod a file in git that takes builds from staging. Where the cluster is observed, a
deploy commit is not enough: a build goes on to prod once its rollout was seen complete in staging, and a
build whose rollout failed there never does, while prod keeps the good one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import commit, git
from bench.kubelab import MANIFEST, SCHEME, Lab, NewLab
from bench.kubelet import Kubelet
from kube.test_observe import kubectl, until
from tagtrail.adapters.trailers import groups
from tagtrail_demo import ImagePusher


@pytest.fixture
def lab(new_lab: NewLab, kubeconfig: Path, kubelet: Kubelet, monkeypatch: pytest.MonkeyPatch) -> Lab:
    made = new_lab(mode="gitops", extra="  follow: 60s\n")
    config = made.root / "tagtrail.yaml"
    text = config.read_text()
    staging = text[text.index("  git:\n") : text.index("kubernetes:\n")]
    lanes = (
        "environments:\n  staging:\n"
        + staging.replace("\n  ", "\n    ").replace("  git:", "    git:", 1)
        + "  prod:\n    from: staging\n    git: {files: [deploy/prod.yaml]}\n"
    )
    config.write_text(text.replace(staging, "") + lanes)
    prod = MANIFEST.format(namespace="prod", image=made.ref("web", 0))
    commit(made.root, {"tagtrail.yaml": config.read_text(), "deploy/prod.yaml": prod}, "two environments")
    kubectl(kubeconfig, "apply", "-f", str(made.root / "deploy" / "web.yaml"))
    monkeypatch.chdir(made.root)
    return made


def staging_ready(capsys: pytest.CaptureFixture[str]) -> bool:
    code, out, err = run(capsys, "status", "--env", "staging", "--json")
    assert code == 0, err
    return bool(json.loads(out)[0]["cluster"]["ready"] == 2)


def prod_runs(lab: Lab) -> str:
    return (lab.root / "deploy" / "prod.yaml").read_text().split("/web:")[1].split("@")[0]


def prod_plan(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    code, out, err = run(capsys, "plan", "--json")
    assert code == 0, err
    (web,) = json.loads(out)
    return dict(web["environments"]["prod"])


def push(lab: Lab, pusher: ImagePusher, n: int) -> str:
    """A new build of web, newer than the lab's."""
    sha = commit(lab.root, {f"apps/web/n{n}.txt": f"{n}\n"}, f"more {n}")
    when = lab.builds["web"][-1].created.replace(microsecond=0)
    tag = SCHEME.format(branch="main", sha=sha, time=when.replace(hour=(when.hour + n) % 24))
    image = lab.image.split("/", 1)[1]
    built = pusher.push_image(
        f"{image}/web", tag, created=when, labels={"org.opencontainers.image.revision": sha}
    )
    lab.builds["web"].append(built)
    return tag


def test_prod_takes_a_build_once_its_rollout_in_staging_was_seen_and_never_one_that_failed(
    capsys: pytest.CaptureFixture[str], lab: Lab, kubelet: Kubelet, pusher: ImagePusher
) -> None:
    until(lambda: staging_ready(capsys), "web to run in staging")
    newest = lab.builds["web"][2].tag
    code, out, err = run(capsys, "deploy", "--wait", "--json")
    assert code == 0, out + err
    staging, prod = json.loads(out)
    assert staging["followed"][0]["ok"], staging
    assert [(p["app"], p["reason"]) for p in prod["apps"]] == [("web", "promoted")]
    assert prod_runs(lab) == newest
    (group,) = [g for g in _trailers(lab) if g.get("Tagtrail-Promoted-From")]
    assert group["Tagtrail-Evidence"].startswith(lab.builds["web"][2].digest + " rolled out ")

    # its rollout fails in staging: it never reaches prod, which keeps the good build
    bad = push(lab, pusher, 1)
    kubelet.never_ready.add(f"{lab.image}/web:{bad}@{lab.builds['web'][-1].digest}")
    code, out, err = run(capsys, "deploy", "--wait")
    assert code == 1, out + err
    assert prod_runs(lab) == newest
    plan = prod_plan(capsys)
    assert (plan["action"], plan["reason"]) == ("hold", "failed-in-source")

    # a deploy commit alone, its rollout not seen: not ready in staging
    later = push(lab, pusher, 2)
    code, out, err = run(capsys, "deploy")
    assert code == 0, out + err
    assert prod_runs(lab) == newest
    plan = prod_plan(capsys)
    assert (plan["action"], plan["reason"]) == ("hold", "not-ready-in-source")
    assert later in plan["sentence"]


def _trailers(lab: Lab) -> list[dict[str, str]]:
    return groups(git(lab.root, "log", "-1", "--format=%B"))
