"""Who may use the web app, through the ASGI app (Starlette's test client, a controller on the in-memory
fakes): who gets through the sign-in limits and how long the others are told to wait, and what replicas
need to ask each other."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakes import FakeRegistry, FakeTarget, config_text
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tagtrail.adapters.history import DecisionLog
from tagtrail.config import Config
from tagtrail.reconcile import Reconciler
from tagtrail.serve.controller import Controller
from tagtrail.serve.controller.signouts import KEPT, SignOuts
from tagtrail.serve.web.app import create_app
from tagtrail.serve.web.hooks import CLIENTS_KEPT, RateLimiter
from tagtrail.targets.factory import open_project

TOKEN = "t" * 40
WEBHOOK_TOKEN = "w" * 40
REPLICA_SECRET = "r" * 40
ENV = {
    "TAGTRAIL_TOKEN": TOKEN,
    "TAGTRAIL_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    "TAGTRAIL_REPLICA_SECRET": REPLICA_SECRET,
}


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[[], Starlette]]:
    """Makes the web app of a replica (or of the same replica after a restart: the same state folder)."""
    path = tmp_path / "tagtrail.yaml"
    path.write_text(config_text() + f"  decision_log: {tmp_path / 'log.sqlite'}\n")
    made: list[Controller] = []

    def reconcilers(config: Config, config_path: Path) -> Reconciler:
        log = DecisionLog(tmp_path / "l.sqlite")
        return Reconciler(open_project(config, config_path, FakeRegistry({}), target=FakeTarget({}), log=log))

    def make() -> Starlette:
        made.append(Controller(path, reconcilers=reconcilers))
        return create_app(made[-1], ENV, run=False)

    yield make
    for controller in made:
        asyncio.run(controller.client.aclose())


@pytest.fixture
def app(replicas: Callable[[], Starlette]) -> Starlette:
    return replicas()


def sign_in(app: Starlette, address: str, token: str) -> tuple[int, str, str | None]:
    with TestClient(app, client=(address, 40000), follow_redirects=False) as client:
        answer = client.post("/login", data={"name": "sam", "token": token, "next": "/"})
    return answer.status_code, answer.text, answer.headers.get("retry-after")


def test_wrong_sign_ins_from_everywhere_never_lock_out_the_right_token(app: Starlette) -> None:
    """About one wrong sign-in a second from anyone used to lock every user out (the right token got 429)."""
    for n in range(30):
        assert sign_in(app, f"10.0.0.{n}", f"guess-{n}")[0] in (401, 429)
    assert sign_in(app, "192.168.1.5", TOKEN)[0] == 303
    status, page, retry = sign_in(app, "192.168.1.6", "another guess")
    assert status == 429
    assert retry is not None
    assert int(retry) >= 1
    assert re.search(rf"try again in {retry} s", page)


def test_a_guesser_waits_and_is_told_how_long_even_with_the_right_token(app: Starlette) -> None:
    answers = [sign_in(app, "10.1.1.1", f"guess-{n}")[0] for n in range(6)]
    assert answers == [401] * 5 + [429]
    status, page, retry = sign_in(app, "10.1.1.1", TOKEN)
    assert status == 429
    assert retry is not None
    assert 1 <= int(retry) <= 10
    assert f"try again in {retry} s" in page
    assert sign_in(app, "10.1.1.2", TOKEN)[0] == 303  # someone else is not held up by it


def test_replicas_ask_each_other_with_their_own_secret_not_the_webhook_token(app: Starlette) -> None:
    """The webhook token is given to CI and registries; it must not read the decision log or pose as a
    replica. A follower passes webhooks on with the replicas' secret to /internal/hint."""
    hint = {"image": "registry.test/acme/web", "tag": None, "source": "registry"}
    with TestClient(app) as client:
        webhook = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        assert client.get("/internal/decisions", headers=webhook).status_code == 401
        assert client.post("/internal/hint", json=hint, headers=webhook).status_code == 401
        replica = {"Authorization": f"Bearer {REPLICA_SECRET}"}
        assert client.get("/internal/decisions", headers=replica).json() == []
        passed = client.post("/internal/hint", json=hint, headers=replica)
        assert (passed.status_code, passed.json()) == (202, {"app": "web"})
        assert client.post("/internal/hint", content=b"[]", headers=replica).status_code == 400


def test_a_sign_out_holds_after_a_restart_and_after_4097_more(replicas: Callable[[], Starlette]) -> None:
    """A sign-out used to hold only on the replica that made it, until it restarted, and 4,097 later
    sign-outs pushed it out of the list: the cookie (a copy of it) was good again."""
    first = replicas()
    with TestClient(first, follow_redirects=False) as client:
        assert client.post("/login", data={"name": "sam", "token": TOKEN, "next": "/"}).status_code == 303
        cookie = client.cookies["tagtrail_session"]
        assert client.post("/logout").status_code == 303
    sessions = first.state.web.dashboard.sessions
    for n in range(4097):
        sessions.sign_out(sessions.sign_in(TOKEN, f"user{n}").id)
    assert sessions.get(cookie) is None
    restarted = replicas().state.web.dashboard.sessions
    assert restarted.get(cookie) is None
    again = restarted.sign_in(TOKEN, "sam")  # signing in again after it is fine
    assert again is not None
    assert first.state.web.dashboard.sessions.get(again.id) is not None


def test_the_record_of_sign_outs_is_bounded_without_forgetting() -> None:
    record = SignOuts()
    for n in range(KEPT + 100):
        record.add(f"u{n}", 1000 + n)
        record.bound(now=2000 + n, lifetime=10**6)
    assert len(record.names) == KEPT
    assert all(record.refuses(f"u{n}", 1000 + n) for n in range(KEPT + 100))  # nobody signed out gets back in
    assert not record.refuses(f"u{KEPT + 99}", 1001 + KEPT + 99)  # a sign-in after the sign-out is fine
    assert SignOuts.loads(record.dumps()).names == record.names
    record.bound(now=10**7, lifetime=10**6)  # older than any session can live: nothing left to refuse
    assert (record.names, record.before) == ({}, 0)


def test_a_record_of_sign_outs_not_tagtrails_neither_raises_nor_signs_anyone_out_for_ever() -> None:
    """Whoever may update the Lease writes its annotation: deeply nested JSON raised RecursionError on every
    request with a session (and on every sign-out), and a moment far in the future refused every session of
    that name, or everyone's, for ever."""
    assert SignOuts.loads("[" * 100_000).names == {}
    now, lifetime = 1_765_000_000_000, 12 * 3600 * 1000
    record = SignOuts.loads('{"before": 99999999999999, "names": {"sam": 99999999999999}}')
    record.bound(now, lifetime)
    later = now + 3600 * 1000
    assert not record.refuses("sam", later)  # a sign-in an hour from now is good
    assert not record.refuses("alex", later)
    assert record.refuses("sam", now)  # what was signed in by now stays signed out


def test_the_refused_clients_remembered_are_bounded() -> None:
    """Every client that asked was remembered for ever (a full bucket too), so many addresses grew memory
    without bound."""
    clock = [0.0]
    limiter = RateLimiter(1.0, burst=10.0, clock=lambda: clock[0])
    for n in range(3 * CLIENTS_KEPT):
        limiter.blocked(f"a{n}")
        limiter.charge(f"b{n}")
    assert len(limiter) <= CLIENTS_KEPT
    limiter.charge("guesser")
    for _ in range(9):
        limiter.charge("guesser")
    assert limiter.blocked("guesser")  # the one refused most recently is still held back
