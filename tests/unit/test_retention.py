"""Retention's pure parts: the per-tag rules (table-driven) and the digest graph's safety rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from tagtrail.adapters.notify import Message
from tagtrail.adapters.registry import ImageRef
from tagtrail.config import parse_config
from tagtrail.domain.scheme import Scheme
from tagtrail.features.retention.graph import Inventory, Node, resolve
from tagtrail.features.retention.prune import AppPlan, PruneReport
from tagtrail.features.retention.rules import Facts, NeedCreated, Rules, Verdict, Why, judge, referrer_subject
from tagtrail.serve.controller.prune import Pruner
from tagtrail.serve.metrics import Metrics

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
NOW = datetime(2025, 10, 20, 12, 0, tzinfo=UTC)
RULES = Rules(
    keep_deploy=2,
    keep_other=1,
    max_age_other=timedelta(days=10),
    max_age_dirty=timedelta(days=1),
    min_age=timedelta(hours=1),
    delete_unscheme=("sha-*",),
)


def build(branch: str, days_ago: float, sha: str = "abcdef0", dirty: bool = False) -> str:
    tag = SCHEME.format(branch=branch, sha=sha, time=NOW - timedelta(days=days_ago))
    return tag + ("-dirty" if dirty else "")


MAIN = [build("main", d, f"{d:07d}") for d in (1, 2, 3, 4)]
FACTS = Facts(NOW, ("main",), running=frozenset({MAIN[3]}), pins=frozenset(), rollback=frozenset({MAIN[2]}))


def verdicts(tags: list[str], facts: Facts = FACTS, rules: Rules = RULES) -> dict[str, Why]:
    found = judge(SCHEME, tags, rules, facts)
    assert isinstance(found, list)
    return {v.tag: v.why for v in found}


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (MAIN[0], Why.NEWEST),
        (MAIN[1], Why.NEWEST),
        (MAIN[2], Why.ROLLBACK),  # beyond the newest 2, but deployed before
        (MAIN[3], Why.DEPLOYED),  # the oldest, and what runs
        (build("main", 5), Why.OLD_BUILD),
        (build("main", 0.01), Why.TOO_YOUNG),  # 15 minutes: in flight
        (build("main", 30, dirty=True), Why.OLD_DIRTY),
        (build("main", 0.5, dirty=True), Why.NEWEST),  # a young -dirty build stays
        (build("feature/x", 2), Why.NEWEST),  # the newest of its branch
        (build("feature/x", 3), Why.OLD_OTHER),  # beyond keep_other
        (build("fix/old", 20), Why.OLD_OTHER),  # the newest of its branch, but past max_age_other
        ("latest", Why.NOT_OF_SCHEME),
        ("buildcache", Why.NOT_OF_SCHEME),
        ("v1.2.3", Why.NOT_OF_SCHEME),
        ("sha256-" + "a" * 64 + ".sig", Why.REFERRER),
    ],
)
def test_each_rule(tag: str, expected: Why) -> None:
    tags = [*MAIN, build("main", 5), build("feature/x", 2), build("feature/x", 3), tag]
    assert verdicts(list(dict.fromkeys(tags)))[tag] == expected


def test_the_always_kept_list_wins_over_any_rule() -> None:
    old = build("main", 400)
    pinned = build("feature/y", 300)
    strict = Rules(keep_deploy=1, keep_other=0, max_age_other=timedelta(0), min_age=timedelta(0))
    facts = Facts(NOW, ("main",), running=frozenset({old}), pins=frozenset({pinned}))
    found = verdicts([old, pinned, build("main", 1)], facts, strict)
    assert found[old] == Why.DEPLOYED
    assert found[pinned] == Why.PINNED


def test_listed_tags_outside_the_scheme_need_their_age_first() -> None:
    asked = judge(SCHEME, ["sha-1234567", "latest"], RULES, FACTS)
    assert asked == NeedCreated(("sha-1234567",))
    old = Facts(NOW, ("main",), created={"sha-1234567": NOW - timedelta(days=3)})
    assert verdicts(["sha-1234567", "latest"], old) == {
        "sha-1234567": Why.LISTED,
        "latest": Why.NOT_OF_SCHEME,
    }
    young = Facts(NOW, ("main",), created={"sha-1234567": NOW - timedelta(minutes=3)})
    assert verdicts(["sha-1234567"], young) == {"sha-1234567": Why.TOO_YOUNG}


def test_referrer_tags_name_their_subject() -> None:
    assert referrer_subject("sha256-" + "b" * 64 + ".att") == "sha256:" + "b" * 64
    assert referrer_subject("sha256-" + "b" * 64) == "sha256:" + "b" * 64
    assert referrer_subject("sha256-abc.sig") is None


# The digest graph ---------------------------------------------------------------------------------------


def d(name: str) -> str:
    return "sha256:" + name.encode().hex().ljust(64, "0")[:64]


def node(name: str, *children: str, blobs: tuple[str, ...] = (), subject: str | None = None) -> Node:
    return Node(d(name), 100, tuple(d(c) for c in children), tuple((d(b), 1000) for b in blobs), subject)


def plan(kept: dict[str, str], gone: dict[str, str], nodes: list[Node], protected: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    tags = {**kept, **gone}
    inventory = Inventory({t: d(n) for t, n in tags.items()}, {x.digest: x for x in nodes})
    from tagtrail.features.retention.rules import referrer_subject as subject_of

    judged = [
        Verdict(t, Why.REFERRER if subject_of(t) else (Why.NEWEST if t in kept else Why.OLD_BUILD), "")
        for t in tags
    ]
    return resolve(judged, inventory, tuple(d(p) for p in protected))


def test_a_digest_shared_with_a_kept_tag_is_kept() -> None:
    graph = plan({"new": "img"}, {"old": "img"}, [node("img", blobs=("l1",))])
    assert graph.deletions == []
    assert {v.tag: v.why for v in graph.verdicts}["old"] == Why.SHARES_DIGEST
    assert graph.freed == 0


def test_an_index_goes_with_its_children_unless_a_kept_index_lists_them() -> None:
    nodes = [
        node("idx-old", "amd64", "arm64"),
        node("idx-new", "amd64b", "arm64"),  # arm64 is shared with the kept index
        node("amd64", blobs=("c1", "l1")),
        node("arm64", blobs=("c2", "l2")),
        node("amd64b", blobs=("c3", "l3")),
    ]
    graph = plan({"new": "idx-new"}, {"old": "idx-old"}, nodes)
    [deletion] = graph.deletions
    assert deletion.digest == d("idx-old")
    assert deletion.children == (d("amd64"),)  # never arm64: the kept index needs it
    assert deletion.digests[0] == d("idx-old")  # the index before its children
    assert graph.freed == 100 + 100 + 2000  # two manifests and amd64's config and layer


def test_referrers_go_with_their_subject_before_it_and_only_with_it() -> None:
    sig_old, sig_new = "sha256-" + d("old")[7:] + ".sig", "sha256-" + d("new")[7:] + ".sig"
    nodes = [
        node("old", blobs=("l1",)),
        node("new", blobs=("l2",)),
        node("sigold", blobs=("s1",)),
        node("signew", blobs=("s2",)),
        node("sbom", blobs=("s3",), subject=d("old")),  # an OCI 1.1 referrer, found by its subject
        node("sbom2", blobs=("s4",), subject=d("new")),
    ]
    graph = plan(
        {"new": "new"},
        {"old": "old", sig_old: "sigold", sig_new: "signew", "sbom-tag": "sbom", "sbom2-tag": "sbom2"},
        nodes,
    )
    [deletion] = graph.deletions
    assert deletion.digest == d("old")
    assert set(deletion.referrers) == {d("sigold"), d("sbom")}
    assert deletion.digests[-1] == d("old")  # the subject last
    why = {v.tag: v.why for v in graph.verdicts}
    assert why[sig_new] == Why.REFERENCED  # the kept image's signature stays
    assert why["sbom2-tag"] == Why.REFERENCED


def test_a_referrer_whose_subject_is_already_gone_goes() -> None:
    orphan = "sha256-" + d("gone")[7:] + ".sig"
    graph = plan({"new": "new"}, {orphan: "sig"}, [node("new"), node("sig", blobs=("s",))])
    assert [x.digest for x in graph.deletions] == [d("sig")]
    assert graph.deletions[0].why == Why.WITH_SUBJECT


def test_what_runs_by_digest_is_kept_whatever_its_tags_say() -> None:
    graph = plan({}, {"old": "running"}, [node("running")], protected=("running",))
    assert graph.deletions == []


# The schedule of tagtrail serve --------------------------------------------------------------------------


class _Store:
    ref = ImageRef.parse("registry.lan/o/web")
    kind = "distribution"

    def reclaim_hint(self) -> str:
        return "collect garbage"


def test_the_scheduled_prune_is_off_by_default_counts_bytes_and_notifies() -> None:
    config = parse_config("image: registry.lan/o/{app}\n", "tagtrail.yaml")
    scheduled = parse_config("image: registry.lan/o/{app}\nretention: {schedule: 1d}\n", "tagtrail.yaml")
    reconciler = SimpleNamespace(project=SimpleNamespace(config=config), leads=lambda: True)
    sent: list[Message] = []
    graph = resolve(
        [Verdict("old", Why.OLD_BUILD, "old")], Inventory({"old": d("a")}, {d("a"): node("a", blobs=("l",))})
    )
    item = AppPlan("web", _Store(), graph)  # type: ignore[arg-type]
    item.deleted = list(graph.deletions)

    async def work(_: object) -> PruneReport:
        return PruneReport([item], applied=True)

    class Notify:
        async def send_async(self, message: Message) -> bool:
            sent.append(message)
            return True

    now = [1000.0]
    metrics = Metrics()
    pruner = Pruner(metrics, Notify(), work=work, clock=lambda: now[0])  # type: ignore[arg-type]
    assert pruner.wait(reconciler) is None  # type: ignore[arg-type]
    reconciler.project.config = scheduled
    assert pruner.wait(reconciler) == 0.0  # type: ignore[arg-type]
    asyncio.run(pruner.run_once(reconciler, asyncio.Lock()))  # type: ignore[arg-type]
    assert pruner.wait(reconciler) == 86400  # type: ignore[arg-type]
    text = metrics.render().decode()
    assert 'tagtrail_prune_bytes_freed_total{app="web"} 1100.0' in text
    assert 'tagtrail_prune_deletions_total{app="web",reason="old-build"} 1.0' in text
    [message] = sent
    assert "deleted 1 manifests, 1.1 kB" in message.body
    assert "collect garbage" in message.body


def test_a_bug_in_a_scheduled_prune_is_logged_counted_and_the_next_prune_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not only a TagtrailError: any exception of one prune is logged with its traceback and counted in
    /metrics, and the schedule goes on (it used to end the prune task without a word)."""
    scheduled = parse_config("image: registry.lan/o/{app}\nretention: {schedule: 1h}\n", "tagtrail.yaml")
    reconciler = SimpleNamespace(project=SimpleNamespace(config=scheduled), leads=lambda: True)
    now = [1000.0]
    prunes: list[float] = []
    second = asyncio.Event()

    async def work(_: object) -> PruneReport:
        prunes.append(now[0])
        if len(prunes) == 1:
            raise KeyError("a bug")
        second.set()
        return PruneReport([], applied=True)

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    class Quiet:
        async def send_async(self, message: Message) -> bool:
            return True

    metrics = Metrics()
    pruner = Pruner(metrics, Quiet(), work=work, clock=lambda: now[0], sleep=sleep)  # type: ignore[arg-type]

    async def go() -> asyncio.Task[None]:
        task = asyncio.create_task(pruner.loop(lambda: reconciler, asyncio.Lock()))  # type: ignore[arg-type,return-value]
        waiting = asyncio.create_task(second.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        task.cancel()
        await asyncio.gather(task, waiting, return_exceptions=True)
        return task

    task = asyncio.run(go())
    assert task.cancelled(), task.exception()  # it ran until stopped, not until the bug
    assert len(prunes) == 2
    assert prunes[1] - prunes[0] >= 3600  # the next one on the schedule
    [failed] = [r for r in caplog.records if r.exc_info]
    assert "prune" in failed.getMessage()
    assert 'tagtrail_task_failures_total{task="prune"} 1.0' in metrics.render().decode()
