"""`tagtrail serve` as a user runs it: a real process, a real registry sending its notifications to it, real
git remotes, and a loopback receiver standing in for ntfy/Slack (apprise's json://; nothing of theirs can
run here). Signals are real signals."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.git import Remote, git
from bench.homelab import SCHEME, Homelab
from bench.serve import (
    GITHUB_SECRET,
    REGISTRY_SECRET,
    WEBHOOK_TOKEN,
    Receiver,
    ServeProcess,
    ci_run,
    remote_log,
    serve_env,
    wait_for,
)
from tagtrail.adapters.trailers import groups as trailers
from tagtrail_demo import RegistryServer


def test_one_ci_run_of_three_apps_becomes_one_deploy_commit(
    served: ServeProcess,
    lab: Homelab,
    notifying_registry: RegistryServer,
    file_remote: Remote,
    receiver: Receiver,
) -> None:
    before = remote_log(file_remote)
    apps = ("chime", "doorbell", "lights")
    tag, digests = ci_run(lab, notifying_registry, apps)
    wait_for(
        lambda: len(remote_log(file_remote)) > len(before) + 1, what="the deploy commit"
    )  # +1: the source commit
    log = remote_log(file_remote)
    assert len(log) == len(before) + 2, log  # the source commit and ONE deploy commit
    message = git(file_remote.path, "log", "-1", "--format=%B", "main")
    groups = trailers(message)
    assert sorted(g["Tagtrail-App"] for g in groups) == sorted(apps)
    for group in groups:
        assert (
            group["Tagtrail-To"]
            == f"{lab.image}/{group['Tagtrail-App']}:{tag}@{digests[group['Tagtrail-App']]}"
        )
        assert group["Tagtrail-Reason"] == "newer-build"
        assert group["Tagtrail-Actor"] == "tagtrail serve"
    assert served.metric("tagtrail_webhook_requests_total", source="registry", outcome="accepted") >= 3
    for app in apps:
        assert (
            served.metric("tagtrail_deploys_total", app=app, result="pushed") == 2
        )  # the first reconcile, and this
    # the people who run it hear about it, without secrets
    wait_for(
        lambda: any(set(apps) <= set(t.replace(",", " ").split()) for t in receiver.titles()),
        what=f"a notification naming {apps}: {receiver.titles()}",
    )
    raw = b"".join(receiver.raw)
    assert REGISTRY_SECRET.encode() not in raw
    assert b"dashboard-token" not in raw


def test_a_webhook_is_only_a_hint(served: ServeProcess, lab: Homelab, file_remote: Remote) -> None:
    before = remote_log(file_remote)
    reconciles = served.metric("tagtrail_reconciles_total", result="ok")
    older = lab.tags["gosonos"][
        0
    ]  # an older main build: the registry is re-read and the policy keeps the newest
    future = SCHEME.format(
        branch="main", sha="d" * 40, time=datetime(2099, 1, 1, tzinfo=UTC)
    )  # not in the registry
    auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    for body in (
        {"image": f"{lab.image}/gosonos", "tag": older},
        {"image": f"{lab.image}/gosonos", "tag": future},
        {"image": f"127.0.0.1:1/{lab.prefix}/lights", "tag": future},  # another registry, same path
    ):
        answer = served.post("/hooks/generic", json=body, headers=auth)
        assert answer.status_code == 202, answer.text
        assert answer.json()["apps"] in (["gosonos"], ["lights"])
    foreign = served.post(
        "/hooks/generic", json={"image": "docker.io/evil/gosonos", "tag": "1"}, headers=auth
    )
    assert foreign.status_code == 202
    assert foreign.json() == {"apps": [], "ignored": 1}
    wait_for(lambda: served.metric("tagtrail_reconciles_total", result="ok") > reconciles, what="a reconcile")
    assert remote_log(file_remote) == before  # nothing older, unknown or foreign was deployed
    assert served.post("/hooks/generic", json={"image": f"{lab.image}/gosonos"}).status_code == 401
    wrong = served.post("/hooks/generic", json={"image": "x"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert served.post("/hooks/generic", content=b"not json", headers=auth).status_code == 400
    assert served.metric("tagtrail_webhook_requests_total", source="generic", outcome="unauthorized") == 2


def test_registry_notifications_need_the_shared_secret(served: ServeProcess, lab: Homelab) -> None:
    envelope = {
        "events": [
            {
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "repository": f"{lab.prefix}/chime",
                    "tag": lab.tags["chime"][0],
                },
            }
        ]
    }
    headers = {"Content-Type": "application/vnd.docker.distribution.events.v1+json"}
    assert served.post("/hooks/registry", json=envelope, headers=headers).status_code == 401
    wrong = served.post(
        "/hooks/registry", json=envelope, headers={**headers, "Authorization": "Bearer guess"}
    )
    assert wrong.status_code == 401
    right = served.post(
        "/hooks/registry", json=envelope, headers={**headers, "Authorization": f"Bearer {REGISTRY_SECRET}"}
    )
    assert right.status_code == 202
    assert right.json()["apps"] == ["chime"]
    assert served.metric("tagtrail_webhook_requests_total", source="registry", outcome="unauthorized") == 2
    assert "guess" not in served.output()


def _github(
    served: ServeProcess,
    event: str,
    payload: dict[str, object],
    *,
    secret: str | None = GITHUB_SECRET,
    delivery: str | None = None,
    signature: str | None = None,
) -> tuple[int, dict[str, object]]:
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = (
            "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        )
    answer = served.post("/hooks/github", content=body, headers=headers)
    return answer.status_code, answer.json()


def test_github_package_events_are_verified(served: ServeProcess, lab: Homelab) -> None:
    # The shapes GitHub documents for registry_package (action published) and package events.
    registry_package = {
        "action": "published",
        "registry_package": {
            "name": "switches",
            "namespace": "homelab",
            "ecosystem": "CONTAINER",
            "package_type": "CONTAINER",
            "owner": {"login": "homelab", "type": "User"},
            "package_version": {
                "version": "sha256:" + "a" * 64,
                "container_metadata": {
                    "tag": {"name": lab.tags["switches"][0], "digest": "sha256:" + "a" * 64}
                },
                "package_url": f"{lab.image}/switches:{lab.tags['switches'][0]}",
            },
        },
        "sender": {"login": "octocat"},
    }
    package = {
        "action": "published",
        "package": {
            "name": "lights",
            "namespace": "homelab",
            "package_type": "container",
            "owner": {"login": "homelab"},
            "package_version": {
                "package_url": f"{lab.image}/lights:{lab.tags['lights'][1]}",
                "container_metadata": {"tag": {"name": lab.tags["lights"][1]}},
            },
        },
    }
    assert _github(served, "registry_package", registry_package) == (
        202,
        {"apps": ["switches"], "ignored": 0},
    )
    assert _github(served, "package", package) == (202, {"apps": ["lights"], "ignored": 0})
    code, answer = _github(served, "registry_package", registry_package, secret="not-the-secret")
    assert (code, answer) == (401, {"error": "missing or wrong X-Hub-Signature-256"})
    assert _github(served, "registry_package", registry_package, secret=None)[0] == 401
    assert _github(served, "registry_package", registry_package, signature="sha1=abc")[0] == 401
    # A captured, correctly signed request sent again is refused.
    delivery = str(uuid.uuid4())
    captured = {**registry_package, "sender": {"login": "octocat-2"}}
    assert _github(served, "registry_package", captured, delivery=delivery)[0] == 202
    assert _github(served, "registry_package", captured, delivery=delivery)[0] == 409
    # … and so is the same signed body under a new delivery id (the id is not covered by the signature)
    assert _github(served, "registry_package", captured, delivery=str(uuid.uuid4()))[0] == 409
    assert _github(served, "ping", {"zen": "Keep it logically awesome."})[0] == 202
    assert _github(served, "push", {"ref": "refs/heads/main"})[0] == 400
    assert served.metric("tagtrail_webhook_requests_total", source="github", outcome="unauthorized") == 3
    assert served.metric("tagtrail_webhook_requests_total", source="github", outcome="replayed") == 2
    assert "octocat" not in served.output()  # refused requests are logged without their payload


def test_webhook_bodies_are_capped_and_bad_senders_rate_limited(served: ServeProcess) -> None:
    auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    big = served.post("/hooks/generic", content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=auth)
    assert big.status_code == 413  # serve.webhooks.max_body: 1 MiB by default
    with httpx.Client(base_url=served.url) as client:
        # a valid sender is never slowed: a registry pushes bursts
        valid = [
            client.post("/hooks/generic", json={"image": "docker.io/x/y"}, headers=auth).status_code
            for _ in range(100)
        ]
        assert set(valid) == {202}
        # a client guessing tokens runs out after a burst of 10 (serve.webhooks.rate: 1 a second) …
        guesses = [
            client.post(
                "/hooks/generic", json={"image": "x"}, headers={"Authorization": f"Bearer guess{n}"}
            ).status_code
            for n in range(20)
        ]
        assert guesses[:9] == [401] * 9
        assert 429 in guesses
        # … while a request that authenticates is never throttled (behind an ingress, every sender shares
        # one IP: a bad actor must not block the real registry)
        assert client.post("/hooks/generic", json={"image": "docker.io/x/y"}, headers=auth).status_code == 202
    assert served.metric("tagtrail_webhook_requests_total", source="generic", outcome="rate_limited") >= 2
    assert served.metric("tagtrail_webhook_requests_total", source="generic", outcome="too_large") == 1


def test_probes_and_metrics(served: ServeProcess, lab: Homelab) -> None:
    assert served.get("/healthz").status_code == 200
    ready = served.get("/readyz")
    assert (ready.status_code, ready.text.strip()) == (200, "ready")
    text = served.get("/metrics").text
    for name in (
        "tagtrail_reconciles_total",
        "tagtrail_reconcile_duration_seconds_bucket",
        "tagtrail_registry_requests_total",
        "tagtrail_deploys_total",
        "tagtrail_pending_updates",
        "tagtrail_last_successful_reconcile_timestamp_seconds",
    ):
        assert name in text, name
    assert served.metric("tagtrail_registry_requests_total", registry=lab.registry.host, status="200") >= 16
    assert served.metric("tagtrail_deploys_total", app="gosonos", result="pushed") == 1
    assert served.metric("tagtrail_pending_updates") == 0
    assert (
        served.metric("tagtrail_last_successful_reconcile_timestamp_seconds")
        > datetime(2026, 1, 1).timestamp()
    )


def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(served: ServeProcess, lab: Homelab) -> None:
    config = lab.root / "tagtrail.yaml"
    good = config.read_text()
    config.write_text(good.replace("scheme:", "scheme: [oops\nx:"))
    served.send(signal.SIGHUP)
    wait_for(
        lambda: "config rejected" in served.get("/").text, what="the dashboard to say the config was rejected"
    )
    assert served.get("/readyz").status_code == 200  # still running on the old config
    assert "tagtrail.yaml" in served.output()
    assert "keeping the running one" in served.output()
    config.write_text(good.replace("interval: 1h", "interval: 2h"))
    served.send(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in served.output(), what="the reload")
    assert "config rejected" not in served.get("/").text
    config.write_text(good)


def test_sigterm_finishes_the_push_in_progress(
    lab: Homelab, hook_port: int, file_remote: Remote, notifying_registry: RegistryServer, tmp_path: Path
) -> None:
    # A slow `git push` (a real push, started late): SIGTERM arrives while it runs.
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    started = tmp_path / "push-started"
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = push ]; then touch "{started}"; sleep 2; fi\nexec /usr/bin/git "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    env = serve_env({"PATH": f"{wrapper.parent}:{os.environ['PATH']}"})
    process = ServeProcess(lab.root, port=hook_port, env=env).start(ready=False)
    wait_for(started.exists, what="the first push to start")
    code = process.stop(signal.SIGTERM)
    assert code == 0, process.output()
    assert "stopping (SIGTERM)" in process.output()
    log = remote_log(file_remote)
    assert len(log) == 7
    assert log[0].split(" ", 1)[1].startswith("deploy: 8 apps")
    assert git(lab.root, "status", "--porcelain") == ""
    assert not (lab.root / ".git" / "index.lock").exists()


def test_a_failed_push_is_notified(
    lab: Homelab, hook_port: int, file_remote: Remote, receiver: Receiver
) -> None:
    hook = file_remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    process = ServeProcess(lab.root, port=hook_port).start(ready=False)
    try:
        wait_for(
            lambda: any("failed" in t for t in receiver.titles()),
            what=f"a failure notification: {receiver.titles()}",
        )
        assert process.get("/readyz").status_code == 503
        assert "last reconcile failed" in process.get("/").text
    finally:
        assert process.stop() == 0
    assert len(remote_log(file_remote)) == 6
    failure = next(m for m in receiver.messages if "failed" in m["title"])
    assert "protected branch" in failure["message"] or "rejected" in failure["message"]
