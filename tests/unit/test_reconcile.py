"""The reconciler's own logic, fast: observe → decide → act → record with an in-memory registry and target
(tests/unit/fakes.py). The same paths run against a real registry and real git in tests/integration."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from fakes import NOW, FakeRegistry, FakeTarget, build, config, config_text, digest_of

from tagtrail.adapters.history import DecisionLog, DecisionRecord
from tagtrail.domain.policy import Reason, Running
from tagtrail.errors import ConfigError, RegistryAuthError, RegistryError, TagtrailError
from tagtrail.reconcile import Outcome, Reconciler, pin, rollback, unpin
from tagtrail.targets.factory import open_project

OLD = build("main", 48, "aaaaaaa")
MID = build("main", 24, "bbbbbbb")
NEW = build("main", 2, "ccccccc")


def running(tag: str) -> Running:
    return Running(tag, digest_of(tag))


def reconciler(tmp_path: Path, target: FakeTarget, registry: FakeRegistry, extra: str = "") -> Reconciler:
    log = DecisionLog(tmp_path / "decisions.sqlite")
    project = open_project(config(extra), tmp_path / "tagtrail.yaml", registry, target=target, log=log)
    return Reconciler(project, clock=lambda: NOW)


def test_a_newer_build_is_deployed_pinned_by_digest_and_recorded(tmp_path: Path) -> None:
    target = FakeTarget({"web": running(OLD), "api": running(NEW)})
    registry = FakeRegistry({"acme/web": [OLD, MID, NEW], "acme/api": [MID, NEW]})
    rec = reconciler(tmp_path, target, registry)
    report = asyncio.run(rec.run(actor="test"))
    assert report.outcomes() == {"web": Outcome.DEPLOYED, "api": Outcome.NOTHING}
    assert target.running["web"] == running(NEW)
    [change] = target.writes
    assert [(c.app, c.image.reference, c.reason) for c in change.images] == [
        ("web", f"registry.test/acme/web:{NEW}@{digest_of(NEW)}", Reason.NEWER_BUILD)
    ]
    # the winner is read once (its revision label and its digest together, no HEAD); the up-to-date app
    # costs one HEAD on the first look (has its running tag moved?)
    assert sorted(registry.requests) == [
        ("config", "acme/web"),
        ("head", "acme/api"),
        ("tags", "acme/api"),
        ("tags", "acme/web"),
    ]
    last = rec.project.log.last_each()
    assert (last["web"].action, last["web"].outcome, last["web"].commit) == (
        "deploy",
        "pushed",
        report.commit,
    )
    assert last["api"].reason == "up-to-date"
    # the steady state: tag lists alone
    registry.requests.clear()
    asyncio.run(rec.run(actor="test"))
    assert sorted(registry.requests) == [("tags", "acme/api"), ("tags", "acme/web")]


def test_a_plan_writes_nothing(tmp_path: Path) -> None:
    target = FakeTarget({"web": running(OLD)})
    planned = asyncio.run(
        reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, NEW]})).plan(actor="test")
    )
    assert [(p.app, p.decision.action, p.target.tag if p.target else None) for p in planned] == [
        ("web", "deploy", NEW)
    ]
    assert target.writes == []


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (
            RegistryError("registry.test", "acme/web", "503 Service Unavailable", transient=True),
            Outcome.RETRY,
        ),
        (RegistryAuthError("registry.test", "acme/web", "401: credentials refused"), Outcome.STALLED),
    ],
)
def test_a_registry_that_cannot_be_read_never_writes_and_says_whether_to_retry(
    tmp_path: Path, error: RegistryError, outcome: Outcome
) -> None:
    target = FakeTarget({"web": running(OLD), "api": running(OLD)})
    registry = FakeRegistry({"acme/web": [OLD, NEW], "acme/api": [OLD, NEW]})
    registry.fail["acme/web"] = error
    report = asyncio.run(reconciler(tmp_path, target, registry).run(actor="test"))
    assert report.outcomes() == {"web": outcome, "api": Outcome.DEPLOYED}
    assert target.running["web"] == running(OLD)  # invariant 4: a failed read never leads to a write
    web = next(p for p in report.planned if p.app == "web")
    assert (web.decision.action, web.decision.reason) == ("hold", Reason.REGISTRY_ERROR)


def test_a_rollback_that_lands_during_a_retry_wins(tmp_path: Path) -> None:
    """The push is rejected because a person rolled back and pinned meanwhile: deciding again on the new
    files and config keeps their rollback instead of pushing the newer build over it."""

    def someone_rolls_back(target: FakeTarget) -> None:
        target.running["web"] = running(OLD)
        target.config_text = config_text(f"  pins:\n    web: {OLD}\n")

    target = FakeTarget({"web": running(MID)}, config_text=config_text(), before_write=someone_rolls_back)
    report = asyncio.run(
        reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, MID, NEW]})).run(actor="test")
    )
    assert target.attempts == 2
    assert target.writes == []
    assert target.running["web"] == running(OLD)
    [web] = report.planned
    assert (web.decision.action, web.decision.reason) == ("hold", Reason.PINNED)


def test_a_newer_deploy_that_lands_during_a_retry_is_never_undone(tmp_path: Path) -> None:
    newest = build("main", 1, "9999999")

    def someone_deploys_newer(target: FakeTarget) -> None:
        target.running["web"] = running(newest)

    target = FakeTarget({"web": running(OLD)}, before_write=someone_deploys_newer)
    registry = FakeRegistry({"acme/web": [OLD, NEW, newest]})
    registry_tags_before = len(registry.requests)
    asyncio.run(reconciler(tmp_path, target, registry).run(actor="test"))
    assert target.running["web"] == running(newest)
    assert target.writes == []
    # deciding again costs no second tag list: the registry is read once per run
    assert [r for r in registry.requests[registry_tags_before:] if r[0] == "tags"] == [("tags", "acme/web")]


def test_a_bad_config_pushed_during_a_retry_stops_the_write(tmp_path: Path) -> None:
    def someone_breaks_the_config(target: FakeTarget) -> None:
        target.config_text = "scheme: [\n"

    target = FakeTarget({"web": running(OLD)}, config_text="ok", before_write=someone_breaks_the_config)
    with pytest.raises(ConfigError):
        asyncio.run(reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, NEW]})).run(actor="test"))
    assert target.writes == []


def test_the_cooldown_holds_automatic_deploys_only(tmp_path: Path) -> None:
    extra = "  cooldown: 10m\n"
    target = FakeTarget({"web": running(OLD)})
    rec = reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, NEW]}), extra)
    rec.project.log.record(
        DecisionRecord(
            "web", "deploy", "newer-build", "", None, None, "x", commit="c" * 40, outcome="pushed",
            time=NOW - timedelta(minutes=3), automatic=True,
        )
    )  # fmt: skip
    held = asyncio.run(rec.run(actor="tagtrail serve", automatic=True))
    assert held.outcomes() == {"web": Outcome.HELD}
    assert held.planned[0].decision.reason == Reason.COOLDOWN
    manual = asyncio.run(rec.run(actor="alice"))
    assert manual.outcomes() == {"web": Outcome.DEPLOYED}


def test_an_automatic_deploy_is_recorded_as_such_for_the_next_cooldown(tmp_path: Path) -> None:
    target = FakeTarget({"web": running(OLD)})
    rec = reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, NEW]}))
    asyncio.run(rec.run(actor="anything", automatic=True))
    assert set(rec.project.log.last_automatic_deploys()) == {"web"}
    asyncio.run(rec.run(actor="tagtrail serve"))  # a person's deploy, whatever the actor's name
    assert rec.project.log.last_each()["web"].automatic is False


def test_a_pin_in_the_config_is_deployed_and_held(tmp_path: Path) -> None:
    target = FakeTarget({"web": running(NEW)})
    rec = reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, NEW]}), f"  pins:\n    web: {OLD}\n")
    report = asyncio.run(rec.run(actor="test"))
    assert target.running["web"] == running(OLD)
    assert report.planned[0].decision.reason == Reason.PINNED
    again = asyncio.run(rec.run(actor="test"))
    assert again.outcomes() == {"web": Outcome.HELD}


def test_unknown_apps_are_refused(tmp_path: Path) -> None:
    rec = reconciler(tmp_path, FakeTarget({"web": running(OLD)}), FakeRegistry({}))
    with pytest.raises(TagtrailError, match=r"no reference to app 'nope'.*apps there: web"):
        asyncio.run(rec.plan(["nope"], actor="test"))


def test_rollback_pin_and_unpin_are_one_change_each(tmp_path: Path) -> None:
    target = FakeTarget({"web": running(NEW)})
    rec = reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, MID, NEW]}))
    rolled = asyncio.run(rollback(rec, "web", "aaaaaaa", actor="alice"))
    assert target.running["web"] == running(OLD)
    assert rolled.planned[0].decision.reason == Reason.ROLLBACK
    assert dict(target.writes[-1].pins) == {"web": OLD}
    asyncio.run(pin(rec, "web", MID, actor="alice"))
    assert (target.running["web"], dict(target.writes[-1].pins)) == (running(MID), {"web": MID})
    with pytest.raises(TagtrailError, match="web is not pinned"):
        asyncio.run(unpin(rec, "web", actor="alice"))  # the loaded config has no pin


def test_a_rollback_refuses_builds_that_are_not_eligible(tmp_path: Path) -> None:
    feature = build("feature/x", 1, "ddddddd")
    rec = reconciler(tmp_path, FakeTarget({"web": running(NEW)}), FakeRegistry({"acme/web": [feature]}))
    with pytest.raises(TagtrailError, match="not a build of main"):
        asyncio.run(rollback(rec, "web", feature, actor="alice"))
    with pytest.raises(TagtrailError, match="no earlier deploy"):
        asyncio.run(rollback(rec, "web", None, actor="alice"))


def test_pin_takes_only_eligible_builds_unless_forced(tmp_path: Path) -> None:
    feature = build("feature/x", 1, "ddddddd")
    target = FakeTarget({"web": running(NEW)})
    rec = reconciler(tmp_path, target, FakeRegistry({"acme/web": [OLD, NEW, feature, "latest"]}))
    for tag in ("latest", feature):
        with pytest.raises(TagtrailError, match=r"only eligible builds are pinned\. Pass --force"):
            asyncio.run(pin(rec, "web", tag, actor="alice"))
    assert target.writes == []
    forced = asyncio.run(pin(rec, "web", "latest", actor="alice", force=True))
    assert forced.planned[0].decision.reason == Reason.PIN_FORCED
    assert (target.running["web"], dict(target.writes[-1].pins)) == (running("latest"), {"web": "latest"})


@pytest.mark.parametrize("tag", ["main\nInjected: header", "../../web/manifests/x", "a b", "-x", "é"])
def test_a_pin_that_is_not_a_tag_never_reaches_a_url(tmp_path: Path, tag: str) -> None:
    registry = FakeRegistry({"acme/web": [OLD, NEW]})
    rec = reconciler(tmp_path, FakeTarget({"web": running(NEW)}), registry)
    with pytest.raises(TagtrailError, match="is not a tag"):
        asyncio.run(pin(rec, "web", tag, actor="alice", force=True))
    assert registry.requests == []
