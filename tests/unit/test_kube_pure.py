"""The pure halves of the cluster code: which containers are an app's, the guarded JSON patch, label
selectors, rollout progress as `kubectl rollout status` judges it, and drift. The real-cluster tests in
tests/integration/kube cover them end to end; these pin the edge cases."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from tagtrail.adapters.kube.rollout import on_new_build, progress
from tagtrail.adapters.kube.view import AppView, WorkloadView
from tagtrail.adapters.kube.workloads import annotate, matches, patch, read
from tagtrail.adapters.refs import Image, Matcher
from tagtrail.serve.controller.snapshot import Snapshot, observe_cluster, replicas

D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
MATCHER = Matcher("registry.lan/x/{app}", ["registry.lan:32000/{app}"])


def body(
    containers: list[dict[str, str]], init: list[dict[str, str]] | None = None, **meta: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if init:
        spec["initContainers"] = init
    return {
        "metadata": {"name": "web", "namespace": "shop", "generation": 2, **meta},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": spec}},
    }


def test_containers_of_an_app_are_found_by_template_and_alias_init_containers_too() -> None:
    found = read(
        "Deployment",
        body(
            [
                {"name": "web", "image": f"registry.lan/x/web:main.1@{D1}"},
                {"name": "proxy", "image": "nginx:1.25"},
            ],
            init=[{"name": "migrate", "image": "registry.lan:32000/web:main.1"}],
        ),
        MATCHER,
    )
    assert found is not None
    assert [(c.name, c.init, c.pointer) for c in found.containers] == [
        ("migrate", True, "/spec/template/spec/initContainers/0/image"),
        ("web", False, "/spec/template/spec/containers/0/image"),
    ]
    assert found.ref == "shop/deployment/web"


def test_a_workload_without_a_managed_image_is_not_read() -> None:
    assert read("Deployment", body([{"name": "proxy", "image": "nginx"}]), MATCHER) is None


def test_the_patch_tests_each_image_before_replacing_it_and_keeps_the_name_as_written() -> None:
    found = read(
        "Deployment", body([], init=[{"name": "m", "image": "registry.lan:32000/web:main.1"}]), MATCHER
    )
    assert found is not None
    ops = patch(found, {"web": Image("registry.lan/x/web", "main.2", D2)}, {"tagtrail.dev/tag.web": "main.2"})
    assert ops == [
        {"op": "test", "path": "/metadata/annotations", "value": None},  # no pin set meanwhile
        {
            "op": "test",
            "path": "/spec/template/spec/initContainers/0/image",
            "value": "registry.lan:32000/web:main.1",
        },
        {
            "op": "replace",
            "path": "/spec/template/spec/initContainers/0/image",
            "value": f"registry.lan:32000/web:main.2@{D2}",
        },
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": "/metadata/annotations/tagtrail.dev~1tag.web", "value": "main.2"},
    ]


def test_the_patch_fails_if_a_pin_was_set_changed_or_removed_since_the_read() -> None:
    """A person's pin that lands between tagtrail's read and its patch wins: the API server refuses the
    patch (the map never replaced wholesale), and tagtrail reads and decides again."""
    pinned = body([{"name": "web", "image": f"registry.lan/x/web:main.1@{D1}"}])
    pinned["metadata"]["annotations"] = {"tagtrail.dev/pin.web": "main.1", "other": "x"}
    found = read("Deployment", pinned, MATCHER)
    assert found is not None
    ops = patch(found, {}, {"tagtrail.dev/pin.web": None})
    assert ops[0] == {"op": "test", "path": "/metadata/annotations/tagtrail.dev~1pin.web", "value": "main.1"}
    unpinned = body([{"name": "web", "image": f"registry.lan/x/web:main.1@{D1}"}], annotations={"a": "1"})
    found = read("Deployment", unpinned, MATCHER)
    assert found is not None
    ops = patch(found, {"web": Image("registry.lan/x/web", "main.2", D2)}, {"tagtrail.dev/tag.web": "main.2"})
    assert ops[0] == {"op": "test", "path": "/metadata/annotations/tagtrail.dev~1pin.web", "value": None}
    assert {"op": "add", "path": "/metadata/annotations/tagtrail.dev~1tag.web", "value": "main.2"} in ops
    assert not [op for op in ops if op["path"] == "/metadata/annotations" and op["op"] != "test"]
    assert patch(found, {}, {}) == []


def test_annotations_are_added_one_by_one_escaped_and_removed_only_when_present() -> None:
    ops = annotate(
        {"a": "1", "tagtrail.dev/pin.web": "t"},
        {"tagtrail.dev/pin.web": None, "tagtrail.dev/pin.api": None, "k/x": "v"},
    )
    assert ops == [
        {"op": "add", "path": "/metadata/annotations/k~1x", "value": "v"},
        {"op": "remove", "path": "/metadata/annotations/tagtrail.dev~1pin.web"},
    ]
    assert annotate({}, {"x": None}) == []


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "api"}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            {"tier": "b"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
        ({}, {"app": "web"}, False),
    ],
)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert matches(selector, labels) is expected


def deployment_status(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, **status},
    }


@pytest.mark.parametrize(
    ("status", "state", "detail"),
    [
        ({"updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "replicas": 2}, "complete", ""),
        (
            {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2},
            "progressing",
            "not seen",
        ),
        (
            {"updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2, "replicas": 3},
            "progressing",
            "1 of 2 updated",
        ),
        ({"updatedReplicas": 2, "availableReplicas": 2, "replicas": 3}, "progressing", "1 old replicas left"),
        ({"updatedReplicas": 2, "availableReplicas": 1, "replicas": 2}, "progressing", "1 of 2 available"),
        (
            {
                "updatedReplicas": 1,
                "replicas": 3,
                "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
            },
            "failed",
            "progress deadline exceeded",
        ),
    ],
)
def test_deployment_progress(status: dict[str, Any], state: str, detail: str) -> None:
    found = progress("Deployment", deployment_status(**status))
    assert found.state == state
    assert detail.replace("not seen", "has not seen") in found.detail


def test_a_failed_rollout_counts_the_ready_pods_of_the_new_build_only() -> None:
    """A Deployment's readyReplicas counts the old build's Pods, still serving: the count told with a failed
    rollout is its current ReplicaSet's (the one of the Deployment's revision, owned by it)."""
    deadline = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    found = deployment_status(updatedReplicas=1, readyReplicas=2, replicas=3, conditions=deadline)
    found["metadata"] |= {"uid": "u1", "annotations": {"deployment.kubernetes.io/revision": "2"}}
    failed = progress("Deployment", found)
    assert "2 ready" not in failed.detail

    def replica_set(revision: str, ready: int, owner: str = "u1") -> dict[str, Any]:
        return {
            "metadata": {
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"uid": owner}],
            },
            "status": {"readyReplicas": ready},
        }

    sets = [replica_set("1", 2), replica_set("2", 3, owner="other"), replica_set("2", 0)]
    told = on_new_build(failed, found, sets)
    assert (told.state, told.ready, told.total) == ("failed", 0, 2)
    assert told.detail == "progress deadline exceeded (1 of 2 updated); 0 of 2 pods of the new build ready"
    assert on_new_build(failed, found, sets[:2]) == failed


def test_statefulset_and_daemonset_progress() -> None:
    sts = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "readyReplicas": 1, "replicas": 1},
    }
    assert (
        progress(
            "StatefulSet", {**sts, "status": {**sts["status"], "currentRevision": "a", "updateRevision": "a"}}
        ).state
        == "complete"
    )
    assert (
        progress(
            "StatefulSet", {**sts, "status": {**sts["status"], "currentRevision": "a", "updateRevision": "b"}}
        ).state
        == "progressing"
    )
    ds = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
        },
    }
    assert progress("DaemonSet", ds).state == "progressing"
    assert progress("CronJob", {"status": {}}).state == "complete"


def test_drift_is_the_spec_or_the_pods_disagreeing_with_what_is_declared() -> None:
    found = read("Deployment", body([{"name": "web", "image": f"registry.lan/x/web:main.1@{D1}"}]), MATCHER)
    assert found is not None
    done = progress("Deployment", deployment_status(updatedReplicas=2, availableReplicas=2, replicas=2))
    assert AppView("web", (WorkloadView(found, done, {D1: 2}),)).drift(D1) is None
    assert "spec says" in str(AppView("web", (WorkloadView(found, done, {D1: 2}),)).drift(D2))
    assert "pods run" in str(AppView("web", (WorkloadView(found, done, {D1: 1, D2: 1}),)).drift(D1))
    assert AppView("web").drift(D1) == "no workload in the cluster uses this image"


def test_in_direct_mode_a_spec_that_differs_from_what_tagtrail_set_is_drift() -> None:
    """After a hand `kubectl set image`, the workload's spec is what the target declares, but its
    `tag.APP` annotation still names the build tagtrail put there: that is the declaration."""
    image = {"name": "web", "image": f"registry.lan/x/web:main.1@{D1}"}
    found = read("Deployment", body([image], annotations={"tagtrail.dev/tag.web": "main.2"}), MATCHER)
    assert found is not None
    done = progress("Deployment", deployment_status(updatedReplicas=2, availableReplicas=2, replicas=2))
    view = AppView("web", (WorkloadView(found, done, {D1: 2}),))
    assert view.drift(D1) is None  # GitOps: the files declare, the annotations say nothing
    why = view.drift(D1, annotated=True)
    assert why == (
        f"the spec of shop/deployment/web says registry.lan/x/web:main.1@{D1}, not main.2 as tagtrail set"
    )
    untouched = read("Deployment", body([image], annotations={"tagtrail.dev/tag.web": "main.1"}), MATCHER)
    assert untouched is not None
    assert AppView("web", (WorkloadView(untouched, done, {D1: 2}),)).drift(D1, annotated=True) is None
    never = read("Deployment", body([image]), MATCHER)  # never deployed by tagtrail: nothing declared
    assert never is not None
    assert AppView("web", (WorkloadView(never, done, {D1: 2}),)).drift(D1, annotated=True) is None


def test_direct_mode_drift_reaches_the_dashboard_and_metrics() -> None:
    image = {"name": "web", "image": f"registry.lan/x/web:main.1@{D1}"}
    found = read("Deployment", body([image], annotations={"tagtrail.dev/tag.web": "main.2"}), MATCHER)

    class Cluster:
        async def workloads(self) -> list[Any]:
            return [found]

        async def pods(self) -> list[Any]:
            return []

    class Direct:  # a project whose target is the cluster
        direct = True

        def cluster(self) -> Cluster:
            return Cluster()

        async def source(self) -> None:
            return None

    running = SimpleNamespace(running=SimpleNamespace(digest=D1), running_parsed=None)
    snapshot = Snapshot([SimpleNamespace(app="web", decision=running)])  # type: ignore[list-item]
    asyncio.run(observe_cluster(Direct(), snapshot))  # type: ignore[arg-type]
    assert "not main.2 as tagtrail set" in snapshot.drift["web"]
    assert replicas(snapshot)["web"][2] is True  # tagtrail_cluster_drift
