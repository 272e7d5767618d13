"""The controller's parts, fast and with a fake clock: coalescing hints per commit, the schedule's backoff,
what people are told, and the loop's outcome → schedule mapping (with the in-memory registry and target of
fakes.py; `tagtrail serve` runs against real components in tests/integration/serve)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fakes import FakeRegistry, FakeTarget, build, config, config_text, digest_of

from tagtrail.adapters.history import DecisionLog
from tagtrail.adapters.notify import Message, Notifier
from tagtrail.adapters.refs import Image
from tagtrail.config import Config
from tagtrail.domain.policy import Decision, Reason, Running
from tagtrail.errors import ConfigError, GitError, KubeError, NotLeader, RegistryAuthError, RegistryError
from tagtrail.reconcile import Planned, Reconciler, Report
from tagtrail.reconcile.outcome import Outcome, outcome_of
from tagtrail.serve.controller import Controller
from tagtrail.serve.controller.announce import RegistryFailures, acted, deployed
from tagtrail.serve.controller.periodic import every
from tagtrail.serve.controller.schedule import WHOLE, Schedule
from tagtrail.serve.controller.triggers import Coalescer
from tagtrail.serve.metrics import Metrics
from tagtrail.targets.base import Applied, Declared, Details, Then
from tagtrail.targets.factory import open_project


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_images_of_one_commit_are_deployed_together() -> None:
    clock = Clock()
    triggers = Coalescer(clock)
    assert triggers.hint("web", "abc1234", {"web", "api", "worker"}, wait=30) == {"api", "worker"}
    assert triggers.take() == (set(), False)
    assert triggers.held() == {"web"}  # no other reconcile deploys web before its siblings are there
    assert triggers.hint("api", "abc1234", {"web", "api", "worker"}, wait=30) == {"worker"}
    assert triggers.hint("worker", "abc1234", {"web", "api", "worker"}, wait=30) == set()
    assert triggers.take() == ({"web", "api", "worker"}, False)
    assert triggers.held() == set()


def test_a_commit_whose_images_do_not_all_come_is_deployed_at_its_deadline() -> None:
    clock = Clock()
    triggers = Coalescer(clock)
    triggers.hint("web", "abc1234", {"web", "api"}, wait=30)
    assert triggers.next_deadline() == 1030.0
    clock.now += 29
    assert triggers.take() == (set(), False)
    clock.now += 1
    assert triggers.take() == ({"web"}, False)
    assert triggers.take() == (set(), False)  # taken once


def test_hints_without_a_commit_or_of_one_app_go_at_once() -> None:
    triggers = Coalescer(Clock())
    triggers.hint("web")
    triggers.hint("api", "abc1234", {"api"}, wait=30)
    triggers.hint("db", "abc1234", None, wait=30)  # the commit's apps could not be told
    assert triggers.take() == ({"web", "api", "db"}, False)
    triggers.hint_all()
    assert triggers.take() == (set(), True)


def test_the_schedule_polls_on_the_interval_with_jitter() -> None:
    clock = Clock()
    schedule = Schedule(clock, spread=lambda width: width)  # the largest spread, to see it
    schedule.succeeded(["web"], lambda app: 60.0, jitter=0.1)
    assert schedule.next_deadline() == 1000 + 60 + 6
    assert schedule.due() == set()
    clock.now += 66
    assert schedule.due() == {"web"}


def test_transient_failures_back_off_and_a_success_resets() -> None:
    clock = Clock()
    schedule = Schedule(clock, spread=lambda width: 0.0)
    delays = [schedule.retry(["web"], lambda app: 60.0) for _ in range(10)]
    assert delays == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]  # capped at ten intervals
    assert schedule.failures("web") == 10
    schedule.succeeded(["web"], lambda app: 60.0, jitter=0)
    assert schedule.failures("web") == 0
    assert schedule.retry(["web"], lambda app: 60.0) == 5


def test_a_stalled_app_waits_its_interval_and_everything_now_wakes_all() -> None:
    clock = Clock()
    schedule = Schedule(clock)
    schedule.stalled(["web", "api"], lambda app: 300.0)
    assert schedule.next_deadline() == 1300.0
    schedule.everything_now()
    assert schedule.due() == {"web", "api"}


def _planned(app: str, reason: Reason = Reason.NEWER_BUILD, action: str = "deploy") -> Planned:
    decision = Decision(
        app,
        action,
        reason,
        "s",
        Running("old", None),
        target_tag="new",
        digest=digest_of("new"),  # type: ignore[arg-type]
    )
    return Planned(decision, f"registry.test/acme/{app}")


def test_a_deploy_is_announced_with_from_and_to_and_a_failed_then_too() -> None:
    report = Report(
        [_planned("web")],
        Applied(commit="c" * 40, changed=["web"], previous={"web": "old"}, details=Details(Then(2, ""))),
    )
    [done, then] = deployed(report)
    assert done == Message("tagtrail deployed web", "web: old → new\ncommit cccccccccccc", "success")
    assert (then.kind, "exited 2" in then.body) == ("failure", True)
    assert deployed(Report([_planned("web")])) == []
    assert acted(Report([_planned("web", Reason.ROLLBACK)], Applied(commit="d" * 40)), "alice")[0].title == (
        "tagtrail: pins rolled back"
    )


def test_an_unreadable_registry_is_told_once_at_the_threshold() -> None:
    failures = RegistryFailures()
    failing = Report([_planned("web", Reason.REGISTRY_ERROR, "hold")])
    told = [len(failures.messages(failing, threshold=3)) for _ in range(5)]
    assert told == [0, 0, 1, 0, 0]
    failures.messages(Report([_planned("web", Reason.UP_TO_DATE, "nothing")]), threshold=3)
    assert [len(failures.messages(failing, threshold=3)) for _ in range(3)] == [0, 0, 1]  # counted anew


class Sent(Notifier):
    def __init__(self) -> None:
        super().__init__([])
        self.sent: list[Message] = []

    async def send_async(self, message: Message) -> bool:
        self.sent.append(message)
        return True


def _controller(tmp_path: Path, target: FakeTarget, registry: FakeRegistry, clock: Clock) -> Controller:
    path = tmp_path / "tagtrail.yaml"
    path.write_text(config_text() + f"  decision_log: {tmp_path / 'log.sqlite'}\n")

    def reconcilers(config: Config, config_path: Path) -> Reconciler:
        log = DecisionLog(tmp_path / "l.sqlite")
        return Reconciler(open_project(config, config_path, registry, target=target, log=log))

    return Controller(path, notifier=Sent(), clock=clock, reconcilers=reconcilers)


def test_the_loop_backs_off_a_transient_registry_error_and_waits_on_a_refusal(tmp_path: Path) -> None:
    old, new = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")
    target = FakeTarget({"web": Running(old, digest_of(old)), "api": Running(old, digest_of(old))})
    registry = FakeRegistry({"acme/web": [old, new], "acme/api": [old, new]})
    registry.fail["acme/web"] = RegistryError("registry.test", "acme/web", "503", transient=True)
    registry.fail["acme/api"] = RegistryAuthError("registry.test", "acme/api", "401")
    clock = Clock()

    async def go() -> Controller:
        controller = _controller(tmp_path, target, registry, clock)
        await controller.reconcile()
        await controller.client.aclose()
        return controller

    controller = asyncio.run(go())
    assert controller.schedule.failures("web") == 1
    assert controller.schedule.failures("api") == 0
    interval = controller.config.serve.interval.total_seconds()
    assert controller.schedule.when("web") == clock.now + 5  # the first retry of a transient failure
    assert controller.schedule.when("api") == clock.now + interval  # a refusal waits (or a config reload)
    assert controller.snapshot.planned[0].decision.reason == Reason.REGISTRY_ERROR


def test_a_first_reconcile_that_fails_whole_backs_off_instead_of_spinning(tmp_path: Path) -> None:
    """The target cannot be read at all (an API server down at start): no app is known yet, and the whole
    run backs off as an app would (5 s, then 10 s), instead of being tried again at once."""
    target = FakeTarget({})
    clock = Clock()

    def unreachable() -> Declared:
        raise KubeError("cannot reach the Kubernetes API at https://127.0.0.1:1", transient=True)

    target._declared = unreachable  # type: ignore[method-assign]

    async def go() -> Controller:
        controller = _controller(tmp_path, target, FakeRegistry({}), clock)
        await controller.reconcile()
        assert controller.schedule.when(WHOLE) == clock.now + 5
        await controller.reconcile()
        assert controller.schedule.when(WHOLE) == clock.now + 10
        await controller.client.aclose()
        return controller

    controller = asyncio.run(go())
    assert controller.status.last_error is not None
    assert "cannot reach the Kubernetes API" in controller.status.last_error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (KubeError("the Kubernetes API forbids tagtrail to list deployments", transient=False), False),
        (KubeError("the Kubernetes API failed to list deployments (503)", transient=True), True),
        (RegistryAuthError("registry.test", "acme/web", "401"), False),
        (RegistryError("registry.test", "acme/web", "timed out", transient=True), True),
    ],
)
def test_a_reconcile_that_raises_backs_off_only_where_the_error_says_trying_again_may_help(
    tmp_path: Path, error: KubeError | RegistryError, retried: bool
) -> None:
    """A refused account (403) or credential waits for the interval (or a config reload), as the same
    refusal of one app's registry does; an unreachable or failing API server backs off (5 s, 10 s, …)."""
    target = FakeTarget({})
    clock = Clock()

    def failing() -> Declared:
        raise error

    target._declared = failing  # type: ignore[method-assign]

    async def go() -> Controller:
        controller = _controller(tmp_path, target, FakeRegistry({}), clock)
        await controller.reconcile()
        await controller.client.aclose()
        return controller

    controller = asyncio.run(go())
    interval = controller.config.serve.interval.total_seconds()
    assert controller.schedule.when(WHOLE) == clock.now + (5 if retried else interval)
    assert controller.schedule.failures(WHOLE) == (1 if retried else 0)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (GitError("the push was rejected 5 times"), Outcome.RETRY),
        (ConfigError([]), Outcome.STALLED),
        (KeyError("a bug"), Outcome.STALLED),
        (RegistryError("registry.test", None, "500", transient=True), Outcome.RETRY),
        (RegistryError("registry.test", None, "manifest does not parse"), Outcome.STALLED),
        (NotLeader("the Lease moved to another replica"), Outcome.RETRY),
        (KubeError("forbidden: patch deployments"), Outcome.STALLED),
    ],
)
def test_one_classifier_says_whether_a_failure_may_pass_by_itself(error: Exception, outcome: Outcome) -> None:
    assert outcome_of(error) is outcome


def test_a_periodic_task_outlives_its_failures_backing_off_until_a_turn_works() -> None:
    """One crash policy for poll, prune, base watch and lease: each turn that raises (a bug too) is counted
    by task and waited out, 5 s, 10 s, … up to 5 minutes; a turn that works starts the backoff again; only
    cancelling or `until` ends the task."""
    outcomes: list[Exception | None] = [KeyError("a bug")] * 8 + [None, GitError("unreachable"), None]
    slept: list[float] = []

    async def turn() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    metrics = Metrics()
    asyncio.run(every("poll", turn, metrics, sleep=sleep, until=lambda: not outcomes))
    assert slept == [5, 10, 20, 40, 80, 160, 300, 300, 5]
    assert 'tagtrail_task_failures_total{task="poll"} 9.0' in metrics.render().decode()


def test_the_loop_deploys_and_tells(tmp_path: Path) -> None:
    old, new = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")
    target = FakeTarget({"web": Running(old, digest_of(old))})
    registry = FakeRegistry({"acme/web": [old, new]})

    async def go() -> Controller:
        controller = _controller(tmp_path, target, registry, Clock())
        await controller.reconcile()
        await controller.client.aclose()
        return controller

    controller = asyncio.run(go())
    assert target.running["web"] == Running(new, digest_of(new))
    notifier = controller.notifier
    assert isinstance(notifier, Sent)
    assert [m.title for m in notifier.sent] == ["tagtrail deployed web"]
    assert controller.ready == (True, "ready")
    image = Image("registry.test/acme/web", new, digest_of(new))
    assert controller.status.planned["web"].target == image


def _monorepo(tmp_path: Path, fetch_takes: float = 0.0) -> tuple[Path, Path, Path]:
    """A monorepo of one app (`web`) with one commit; a `git` that counts each fetch (slow by
    `fetch_takes` seconds) to put first on PATH; the file it counts in."""
    import subprocess

    repo = tmp_path / "repo"
    (repo / "apps" / "web").mkdir(parents=True)
    (repo / "apps" / "web" / "Dockerfile").write_text("FROM scratch\n")
    (repo / "tagtrail.yaml").write_text(config_text())
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "one"], check=True)
    fetches = tmp_path / "fetches"
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\n[ "$1" = fetch ] && echo x >> "{fetches}" && sleep {fetch_takes}\nexec /usr/bin/git "$@"\n'
    )
    wrapper.chmod(0o755)
    return repo, wrapper.parent, fetches


def test_a_flood_of_unknown_commits_costs_one_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry notification naming thousands of commits nobody has: one `git fetch`, not one each."""
    import os
    import subprocess

    from tagtrail.serve.controller.commits import CommitApps

    repo, wrappers, fetches = _monorepo(tmp_path)
    commits = CommitApps(Clock())
    rec = Reconciler(open_project(config(), repo / "tagtrail.yaml", FakeRegistry({}), target=FakeTarget({})))
    monkeypatch.setenv("PATH", f"{wrappers}:{os.environ['PATH']}")

    async def flood() -> list[set[str] | None]:
        return [await commits.apps(f"{n:07x}", rec, {"web"}) for n in range(50)]

    assert asyncio.run(flood()) == [None] * 50
    assert fetches.read_text().count("x") == 1
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    assert asyncio.run(commits.apps(head.stdout.strip(), rec, {"web"})) == {"web"}  # a root commit: every app


def test_the_images_of_one_ci_run_wait_for_the_fetch_that_brings_their_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three images of a commit pushed after serve's last fetch arrive together: one lookup fetches, and
    the others, waiting for that fetch, find the commit it brought (not "cannot tell", which would deploy
    each image alone instead of the three in one commit)."""
    import os
    import subprocess

    from tagtrail.serve.controller.commits import CommitApps

    repo, wrappers, fetches = _monorepo(tmp_path, fetch_takes=0.5)
    upstream = tmp_path / "upstream.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(upstream)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(upstream)], check=True)
    pusher = tmp_path / "ci"
    subprocess.run(["git", "clone", "-q", str(upstream), str(pusher)], check=True)
    (pusher / "apps" / "web" / "page.html").write_text("<h1>new</h1>\n")
    for args in (["add", "."], ["commit", "-qm", "web: new page"], ["push", "-q", "origin", "HEAD"]):
        subprocess.run(["git", "-C", str(pusher), *args], check=True)
    sha = subprocess.run(
        ["git", "-C", str(pusher), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    commits = CommitApps(Clock())
    rec = Reconciler(open_project(config(), repo / "tagtrail.yaml", FakeRegistry({}), target=FakeTarget({})))
    monkeypatch.setenv("PATH", f"{wrappers}:{os.environ['PATH']}")

    async def together() -> list[set[str] | None]:
        return list(await asyncio.gather(*(commits.apps(sha, rec, {"web"}) for _ in range(3))))

    assert asyncio.run(together()) == [{"web"}] * 3
    assert fetches.read_text().count("x") == 1


def test_a_follower_counts_no_reconcile_it_did_not_make(tmp_path: Path) -> None:
    """A follower plans (its dashboard stays current) but deploys nothing: tagtrail_reconciles_total and the
    last success are the leader's, so a sum over replicas counts each reconcile once."""
    old, new = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")
    target = FakeTarget({"web": Running(old, digest_of(old))})

    def follower() -> None:
        raise NotLeader("this replica is not the leader")

    async def go() -> Controller:
        controller = _controller(tmp_path, target, FakeRegistry({"acme/web": [old, new]}), Clock())
        controller.reconciler.project.fence.by = follower
        await controller.reconcile()
        await controller.client.aclose()
        return controller

    controller = asyncio.run(go())
    assert target.running["web"] == Running(old, digest_of(old))
    assert controller.status.planned["web"].target is not None  # planned, shown on its dashboard
    metrics = controller.metrics.render().decode()
    assert 'tagtrail_reconciles_total{result="ok"}' not in metrics
    assert "tagtrail_last_successful_reconcile_timestamp_seconds 0.0" in metrics
    assert controller.ready == (True, "ready")  # a follower that plans is ready
