"""The webhook parsers and checks, sign-in sessions and CSRF, on the payload shapes senders document."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from tagtrail.domain.humanize import age
from tagtrail.serve.web import hooks
from tagtrail.serve.web.app import _safe_next
from tagtrail.serve.web.auth import Sessions, csrf_ok, same_origin


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(
    action: str, media_type: str, tag: str | None, repository: str = "homelab/lights"
) -> dict[str, object]:
    target: dict[str, object] = {
        "mediaType": media_type,
        "repository": repository,
        "digest": "sha256:" + "b" * 64,
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": "1",
        "action": action,
        "target": target,
        "request": {"host": "registry.lan:5000", "method": "PUT"},
    }


def test_distribution_envelope_keeps_only_tagged_manifest_pushes() -> None:
    body = json.dumps(
        {
            "events": [
                event("push", "application/vnd.oci.image.manifest.v1+json", "main.1"),
                event(
                    "push", "application/vnd.oci.image.manifest.v1+json", None
                ),  # an index's child, by digest
                event("push", "application/octet-stream", None),  # a blob
                event("pull", "application/vnd.oci.image.manifest.v1+json", "main.1"),
                event(
                    "push",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "main.2",
                    "homelab/chime",
                ),
            ]
        }
    ).encode()
    assert hooks.distribution_pushes(body) == [
        hooks.Push("registry.lan:5000/homelab/lights", "main.1"),
        hooks.Push("registry.lan:5000/homelab/chime", "main.2"),
    ]


@pytest.mark.parametrize("body", [b"", b"[]", b'{"events": 3}', b"\xff"])
def test_distribution_refuses_what_is_not_an_envelope(body: bytes) -> None:
    with pytest.raises(hooks.HookError) as caught:
        hooks.distribution_pushes(body)
    assert caught.value.status == 400


def test_github_package_url_forms() -> None:
    def pushes(url: str | None, tag: str | None = None) -> list[hooks.Push]:
        version: dict[str, object] = {"container_metadata": {"tag": {"name": tag}} if tag else {}}
        if url is not None:
            version["package_url"] = url
        payload = {
            "action": "published",
            "registry_package": {
                "name": "Lights",
                "namespace": "Homelab",
                "package_type": "CONTAINER",
                "package_version": version,
            },
        }
        return hooks.github_pushes("registry_package", json.dumps(payload).encode())

    assert pushes("ghcr.io/homelab/lights:main.1") == [hooks.Push("ghcr.io/homelab/lights", "main.1")]
    assert pushes("ghcr.io/homelab/lights:", "main.2") == [hooks.Push("ghcr.io/homelab/lights", "main.2")]
    assert pushes("ghcr.io/homelab/lights@sha256:" + "c" * 64, "main.3") == [
        hooks.Push("ghcr.io/homelab/lights", "main.3")
    ]
    assert pushes(None, "main.4") == [
        hooks.Push("ghcr.io/homelab/lights", "main.4")
    ]  # lower-cased, as ghcr.io names it


def test_github_ignores_other_packages_and_actions() -> None:
    npm = {"action": "published", "package": {"name": "x", "namespace": "o", "package_type": "npm"}}
    assert hooks.github_pushes("package", json.dumps(npm).encode()) == []
    deleted = {"action": "deleted", "package": {"name": "x", "namespace": "o", "package_type": "container"}}
    assert hooks.github_pushes("package", json.dumps(deleted).encode()) == []
    with pytest.raises(hooks.HookError, match="not a package event"):
        hooks.github_pushes("push", b"{}")


def test_github_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"action":"published"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hooks.github_signature_ok("s3cret", body, good)
    assert not hooks.github_signature_ok("s3cret", body + b" ", good)  # any change to the body
    assert not hooks.github_signature_ok("other", body, good)
    assert not hooks.github_signature_ok("s3cret", body, None)
    assert not hooks.github_signature_ok("s3cret", body, good.replace("sha256=", "sha1="))


def test_generic_hook_body() -> None:
    assert hooks.generic_push(b'{"image": "r.lan/a", "tag": "main.1"}') == hooks.Push("r.lan/a", "main.1")
    assert hooks.generic_push(b'{"image": "r.lan:5000/a:main.1"}') == hooks.Push("r.lan:5000/a", "main.1")
    assert hooks.generic_push(b'{"image": "r.lan:5000/a"}') == hooks.Push("r.lan:5000/a", None)
    for bad in (b'{"tag": "x"}', b'{"image": ""}', b'{"image": "a", "tag": 3}'):
        with pytest.raises(hooks.HookError):
            hooks.generic_push(bad)


def test_bearer_and_shared_secrets() -> None:
    assert hooks.bearer("Bearer abc") == "abc"
    assert hooks.bearer("bearer  abc ") == "abc"
    assert hooks.bearer("Basic abc") is None
    assert hooks.secret_ok("abc", "abc")
    assert not hooks.secret_ok("abc", None)
    assert not hooks.secret_ok("abc", "abd")


def test_replay_guard_remembers_deliveries_for_a_while() -> None:
    clock = Clock()
    guard = hooks.ReplayGuard(keep=3, ttl=60, clock=clock)
    assert guard.first_time("a")
    assert not guard.first_time("a")
    clock.now += 61
    assert guard.first_time("a")  # forgotten after the ttl
    for name in "bcd":
        assert guard.first_time(name)
    assert guard.first_time("a")  # and when more than `keep` came after it


def test_rate_limiter_is_charged_by_refused_requests_per_client() -> None:
    clock = Clock()
    limiter = hooks.RateLimiter(2, burst=4, clock=clock)
    for _ in range(4):
        assert not limiter.blocked("x")
        limiter.charge("x")
    assert limiter.blocked("x")
    assert not limiter.blocked("y")  # another client has its own bucket
    clock.now += 0.5
    assert not limiter.blocked("x")  # one token back after half a second at 2/s
    limiter.charge("x")
    assert limiter.blocked("x")
    clock.now += 10
    assert not limiter.blocked("x")  # refilled (never above the burst)
    for _ in range(4):
        limiter.charge("x")
    assert limiter.blocked("x")


def test_sessions_need_the_token_and_expire() -> None:
    clock = Clock()
    sessions = Sessions("t0ken", clock=clock)
    assert sessions.sign_in("wrong", "sam") is None
    login = sessions.sign_in("t0ken", "sam")
    assert login is not None
    assert login.actor == "sam"
    assert sessions.get(login.id) == login
    assert csrf_ok(login, login.csrf)
    assert not csrf_ok(login, None)
    assert not csrf_ok(login, login.csrf[:-1])
    odd = sessions.sign_in("t0ken", "<script>")
    assert odd is not None
    assert odd.actor == "dashboard"  # a name that is not plain text is not recorded as given
    clock.now += 13 * 3600
    assert sessions.get(login.id) is None
    assert not Sessions(None).enabled
    assert Sessions(None).sign_in("", "x") is None


def test_a_session_signed_by_one_replica_is_good_on_another_until_the_token_changes() -> None:
    clock = Clock()
    first, second = Sessions("t0ken", clock=clock), Sessions("t0ken", clock=clock)
    login = first.sign_in("t0ken", "sam")
    assert login is not None
    again = second.get(login.id)  # another replica, or this one after a restart
    assert again is not None
    assert (again.actor, again.csrf) == ("sam", login.csrf)
    assert Sessions("another-token", clock=clock).get(login.id) is None
    payload, _, signature = login.id.partition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    assert second.get(f"{forged}.{signature}") is None
    assert second.get(payload) is None
    assert second.get("not a session") is None
    second.sign_out(login.id)
    assert second.get(login.id) is None  # this replica forgets it at once
    clock.now += 13 * 3600
    assert first.get(login.id) is None  # and every replica once it expires


def test_same_origin_and_where_to_go_after_signing_in() -> None:
    assert same_origin("http://tagtrail.lan:8080", "tagtrail.lan:8080")
    assert not same_origin("https://evil.example", "tagtrail.lan:8080")
    assert not same_origin("null", "tagtrail.lan:8080")
    assert same_origin(None, "tagtrail.lan:8080")
    assert _safe_next("/apps/lights") == "/apps/lights"
    for bad in ("//evil.example/x", "https://evil.example", "/\\evil", None, ""):
        assert _safe_next(bad) == "/"


def test_age_cells() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert age(None) == "—"
    assert age(now - timedelta(seconds=5), now) == "5s"
    assert age(now - timedelta(minutes=3, seconds=59), now) == "3m"
    assert age(now - timedelta(days=2, hours=5), now) == "2d"
    assert age(now + timedelta(minutes=1), now) == "0s"  # a clock a little ahead is not negative


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (hooks.distribution_pushes, b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        (lambda body: hooks.github_pushes("package", body), b"[" * 100_000 + b"]" * 100_000),
        (hooks.generic_push, b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ],
)
def test_deeply_nested_json_is_a_bad_request_not_an_internal_error(parse: object, body: bytes) -> None:
    with pytest.raises(hooks.HookError, match="nested too deeply") as caught:
        parse(body)  # type: ignore[operator]
    assert caught.value.status == 400


def test_a_github_event_whose_owner_is_a_string_is_a_bad_request() -> None:
    body = json.dumps(
        {"action": "published", "package": {"package_type": "container", "name": "web", "owner": "acme"}}
    ).encode()
    with pytest.raises(hooks.HookError, match="names no package") as caught:
        hooks.github_pushes("package", body)
    assert caught.value.status == 400


def test_a_notification_of_thousands_of_events_costs_a_bounded_amount_of_work() -> None:
    event = {
        "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "acme/web"},
        "request": {"host": "registry.lan"},
    }
    events = [{**event, "target": {**event["target"], "tag": f"main.{n}"}} for n in range(5000)]
    events += [{**event, "target": {**event["target"], "tag": "main.0"}}] * 5000  # repeats
    pushes = hooks.distribution_pushes(json.dumps({"events": events}).encode())
    assert len(pushes) == hooks.MAX_PUSHES
    assert len(set(pushes)) == len(pushes)
