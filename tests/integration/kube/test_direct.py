"""Direct mode on the real control plane: `tagtrail deploy` patches the Deployment (guarded by a `test` of
the image it read), annotates it and records an Event, follows the rollout the controller manager makes and
the stand-in kubelet completes, and rolls a rollout that never gets ready back, pinning the app there (its
annotations and the Warning Event then tell the good build and the bad one). A hand `kubectl set image` is
drift from what tagtrail's annotations declare."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

from bench.cli import run
from bench.git import git
from bench.kubelab import DEPLOYMENT, Lab, NewLab, annotations, deployment, spec_images
from bench.kubelet import Kubelet


@pytest.fixture
def lab(
    new_lab: NewLab, namespace: str, admin: Client, kubelet: Kubelet, monkeypatch: pytest.MonkeyPatch
) -> Lab:
    made = new_lab()
    admin.create(deployment("web", namespace, [{"name": "web", "image": made.ref("web", 0)}], deadline=3))
    monkeypatch.chdir(made.root)
    return made


def test_deploy_patches_the_image_pinned_by_digest_and_waits_for_the_rollout(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["changed"] == ["web"]
    assert result["rollouts"]["web"].startswith("complete 2/2 ready")
    assert spec_images(admin, "web", lab.namespace) == [lab.ref("web", 2)]
    notes = annotations(admin, "web", lab.namespace)
    assert notes["tagtrail.dev/tag.web"] == lab.builds["web"][2].tag
    assert notes["tagtrail.dev/reason.web"] == "newer-build"
    assert notes["tagtrail.dev/commit.web"] == lab.commits[2]
    assert notes["kubernetes.io/change-cause"].startswith("tagtrail deploy: web ")
    events = [e for e in admin.list(Event, namespace=lab.namespace) if e.reason == "TagtrailDeploy"]
    assert len(events) == 1
    assert events[0].involvedObject.name == "web"

    # status: declared and running agree, every replica ready, the lead time from the commit known
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    [web] = json.loads(out)
    assert web["cluster"]["ready"] == web["cluster"]["total"] == 2
    assert web["cluster"]["running"] == {lab.builds["web"][2].digest: 2}
    assert web["cluster"]["drift"] is None
    committed = datetime.fromisoformat(git(lab.root, "show", "-s", "--format=%cI", lab.commits[2]))
    finished = datetime.fromisoformat(web["cluster"]["rollout_finished"])
    assert web["cluster"]["lead_time_seconds"] == (finished - committed).total_seconds()

    # nothing more to do: a second deploy changes nothing
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, err
    assert json.loads(out)["changed"] == []

    # the history is the Deployment's revisions: losing the decision log loses none of it
    code, out, err = run(capsys, "history", "web", "--json")
    assert code == 0, err
    entries = json.loads(out)
    assert [e["tag"] for e in entries] == [lab.builds["web"][2].tag, lab.builds["web"][0].tag]
    assert entries[0]["reason"] == "newer-build"
    assert entries[1]["reason"] == "manual"

    # a hand `kubectl set image` to the older build: the spec declares it, but the annotations tagtrail
    # wrote still name the build it set, and that is the declaration in direct mode
    by_hand = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": lab.ref("web", 0)}]}}}}
    admin.patch(DEPLOYMENT, "web", by_hand, namespace=lab.namespace, patch_type=PatchType.STRATEGIC)
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    drift = json.loads(out)[0]["cluster"]["drift"]
    assert lab.ref("web", 0) in drift
    assert f"not {lab.builds['web'][2].tag} as tagtrail set" in drift


def test_a_rollout_that_never_gets_ready_is_rolled_back_and_pinned(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client, kubelet: Kubelet
) -> None:
    good, bad = lab.builds["web"][1], lab.builds["web"][2]
    kubelet.never_ready.add(lab.ref("web", 2))
    for step in (["pin", "web", good.tag], ["unpin", "web"]):  # the good build, deployed by tagtrail
        code, out, err = run(capsys, *step)
        assert code == 0, out + err
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 1, out + err
    result = json.loads(out)
    assert "progress deadline exceeded" in result["rolled_back"]["web"]
    assert spec_images(admin, "web", lab.namespace) == [lab.ref("web", 1)]
    # every annotation says what the spec runs again: the good build's tag, pin and commit
    notes = annotations(admin, "web", lab.namespace)
    assert notes["tagtrail.dev/pin.web"] == notes["tagtrail.dev/tag.web"] == good.tag
    assert notes["tagtrail.dev/commit.web"] == lab.commits[1]
    warnings = [e for e in admin.list(Event, namespace=lab.namespace) if e.reason == "TagtrailRollback"]
    assert len(warnings) == 1
    assert warnings[0].type == "Warning"
    # it names the bad build, and counts the new ReplicaSet's Pods (the two old ones stayed ready)
    assert f"from {bad.tag}@{bad.digest} to {good.tag}" in warnings[0].message
    assert "0 of 2 pods of the new build ready" in warnings[0].message

    # automation does not retry the bad build: the app is held at its pin
    code, out, err = run(capsys, "plan", "--json")
    assert code == 0, err
    [web] = json.loads(out)
    assert (web["action"], web["reason"]) == ("hold", "pinned")

    # a person unpins: the next deploy tries the newest build again
    code, out, err = run(capsys, "unpin", "web")
    assert code == 0, out + err
    assert "tagtrail.dev/pin.web" not in annotations(admin, "web", lab.namespace)
    code, out, err = run(capsys, "plan", "--json")
    assert json.loads(out)[0]["action"] == "deploy"


def test_rollback_and_pin_work_in_direct_mode(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    code, out, err = run(capsys, "deploy")
    assert code == 0, out + err
    code, out, err = run(capsys, "rollback", "web")
    assert code == 0, out + err
    assert spec_images(admin, "web", lab.namespace) == [lab.ref("web", 0)]
    notes = annotations(admin, "web", lab.namespace)
    assert notes["tagtrail.dev/pin.web"] == lab.builds["web"][0].tag
    assert notes["tagtrail.dev/reason.web"] == "rollback"

    code, out, err = run(capsys, "pin", "web", lab.builds["web"][1].tag)
    assert code == 0, out + err
    assert spec_images(admin, "web", lab.namespace) == [lab.ref("web", 1)]
    assert annotations(admin, "web", lab.namespace)["tagtrail.dev/pin.web"] == lab.builds["web"][1].tag
