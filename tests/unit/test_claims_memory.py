"""What a long-lived reconciler (tagtrail serve's) remembers about claims, and what that costs: the running
tag is HEADed at the first look, when its tag list changes, and at least hourly (a re-push of the running
tag alone changes no tag list); labels are read once per digest."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from fakes import NOW, FakeRegistry, FakeTarget, build, config, digest_of

from tagtrail.adapters.history import DecisionLog
from tagtrail.domain.policy import Reason, Running
from tagtrail.domain.scheme import Ranking
from tagtrail.reconcile import Reconciler
from tagtrail.reconcile.claims import RECHECK
from tagtrail.targets.factory import open_project


def test_the_running_tag_is_looked_at_when_its_list_changes_and_hourly(tmp_path: Path) -> None:
    old, new = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")
    target = FakeTarget({"web": Running(new, digest_of(new))})
    registry = FakeRegistry({"acme/web": [old, new]})
    now = [NOW]
    log = DecisionLog(tmp_path / "log.sqlite")
    project = open_project(config(), tmp_path / "tagtrail.yaml", registry, target=target, log=log)
    rec = Reconciler(project, clock=lambda: now[0])

    def heads() -> int:
        count = registry.requests.count(("head", "acme/web"))
        registry.requests.clear()
        return count

    def reason() -> str:
        [planned] = asyncio.run(rec.plan(actor="test"))
        return planned.decision.reason

    assert (reason(), heads()) == (Reason.UP_TO_DATE, 1)  # the first look
    assert (reason(), heads()) == (Reason.UP_TO_DATE, 0)  # the steady state
    registry.repointed[new] = digest_of("re-pushed")  # the running tag alone moves: no tag list changes
    now[0] += RECHECK - timedelta(minutes=1)
    assert (reason(), heads()) == (Reason.UP_TO_DATE, 0)  # not yet looked at again
    now[0] += timedelta(minutes=1)
    assert (reason(), heads()) == (Reason.TAG_MOVED, 1)  # the hourly look sees it
    registry.tags["acme/web"].append("latest")  # a tag list that changes is looked at at once
    assert (reason(), heads()) == (Reason.TAG_MOVED, 1)


def test_a_new_process_reads_the_winner_once_even_where_the_log_knows_its_digest(tmp_path: Path) -> None:
    """The decision log gives a new process the digests it recorded, not the labels: a HEAD of the
    winner would be followed by reading it all the same, so it is read once, at the tag (issue 15)."""
    old, new = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")
    registry = FakeRegistry({"acme/web": [old, new]})
    log = DecisionLog(tmp_path / "log.sqlite")

    def plan() -> list[str]:
        target = FakeTarget({"web": Running(old, digest_of(old))})
        project = open_project(config(), tmp_path / "tagtrail.yaml", registry, target=target, log=log)
        rec = Reconciler(project, clock=lambda: NOW)
        [planned] = asyncio.run(rec.plan(actor="test"))
        assert (planned.decision.action, planned.decision.target_tag) == ("deploy", new)
        asked = [what for what, _ in registry.requests if what != "tags"]
        registry.requests.clear()
        return asked

    first = plan()
    assert "head" not in first
    assert plan() == first  # the second process: the log knows the winner's digest, not its label


def test_an_unchanged_tag_list_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tagtrail serve's steady state: the same tag list as at the last poll costs its request and no
    parsing; a list that changed is ranked anew (issue 15)."""
    old, new = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")
    registry = FakeRegistry({"acme/web": [old, new, *(build("feature/x", h, "bbbbbbb") for h in range(50))]})
    target = FakeTarget({"web": Running(new, digest_of(new))})
    log = DecisionLog(tmp_path / "log.sqlite")
    rec = Reconciler(
        open_project(config(), tmp_path / "tagtrail.yaml", registry, target=target, log=log),
        clock=lambda: NOW,
    )
    reads: list[str] = []
    real = Ranking._read
    monkeypatch.setattr(Ranking, "_read", lambda self, t: reads.append(t) or real(self, t))

    def poll() -> tuple[str, int]:
        reads.clear()
        [planned] = asyncio.run(rec.plan(actor="test"))
        return planned.decision.reason, len(reads)

    reason, first = poll()
    assert reason == Reason.UP_TO_DATE
    assert first > 0
    assert poll() == (Reason.UP_TO_DATE, 0)
    newer = build("main", 1, "ddddddd")
    registry.tags["acme/web"].append(newer)
    [planned] = asyncio.run(rec.plan(actor="test"))
    assert planned.decision.target_tag == newer  # a changed list is read again
