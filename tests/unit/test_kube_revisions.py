"""A Deployment's ReplicaSets read as revisions: a hand-edited `deployment.kubernetes.io/revision` or
`tagtrail.dev/at.APP` is skipped with a warning naming the ReplicaSet, never a ValueError that stops
`history` and `prune`."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tagtrail.adapters.kube.revisions import containers
from tagtrail.adapters.refs import Matcher
from tagtrail.targets.kubernetes import _revisions

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
MATCHER = Matcher("registry.lan/x/{app}", [])


def replica_set(name: str, revision: str, image: str, **notes: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "annotations": {"deployment.kubernetes.io/revision": revision, **notes},
        },
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def test_a_garbage_revision_or_time_skips_that_replica_set_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sets = [
        replica_set("web-1", "1", f"registry.lan/x/web:main.1@{D1}"),
        replica_set("web-2", "two", f"registry.lan/x/web:main.2@{D2}"),
        replica_set("web-3", "3", f"registry.lan/x/web:main.3@{D3}", **{"tagtrail.dev/at.web": "yesterday"}),
        replica_set(
            "web-4", "4", f"registry.lan/x/web:main.2@{D2}", **{"tagtrail.dev/at.web": "2026-02-01T00:00:00"}
        ),
    ]
    with caplog.at_level(logging.WARNING, logger="tagtrail"):
        entries = _revisions("web", sets, MATCHER)
    assert [e.commit for e in entries] == ["revision 4", "revision 1"]
    assert entries[0].time.tzinfo is not None  # a time without a zone is read as UTC, never naive
    warned = [r.getMessage() for r in caplog.records]
    assert any("shop/replicaset/web-2" in w and "revision" in w for w in warned), warned
    assert any("shop/replicaset/web-3" in w and "tagtrail.dev/at.web" in w for w in warned), warned


@pytest.mark.parametrize(
    "data", [["not", "a", "patch"], {"spec": "x"}, {"spec": {"template": {"spec": "x"}}}, "text"]
)
def test_a_controller_revision_that_is_not_a_template_holds_no_images(
    data: object, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"metadata": {"name": "web-7f9", "namespace": "shop"}, "data": data}
    with caplog.at_level(logging.WARNING, logger="tagtrail"):
        assert containers("web", body, MATCHER) == ()
