"""DESIGN invariant 7, scanned: with known secrets in play — the registry's password (htpasswd basic auth),
the git remote's password (smart HTTP, in the remote's URL), the dashboard token and the three webhook
secrets — none of them, nor the basic-auth header values made from them, appears in anything tagtrail
writes or serves.

The flow is `tagtrail serve` as a process, doing what it does in a day:
- the first reconcile deploys the bootstrap stack (registry reads with the password, a push over HTTP);
- the registry notifies it of a new build (its shared secret), a GitHub package event (signed with its
  secret) and a generic hook (its token) arrive, plus requests with wrong secrets, which are refused;
- a person signs in to the dashboard with the token (and once with a wrong one), reads the pages and rolls
  an app back;
- the remote starts refusing pushes, and the next deploy fails and is notified;
and what is scanned: serve's whole output (its log), every response body and header it sent, /metrics,
every notification body, the decision log (the SQLite files, byte for byte) and the deploy commits.
The demo (`tagtrail demo`) is scanned too, run with the same secrets in its environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.git import Remote, commit, git
from bench.homelab import SCHEME, Homelab, make_homelab
from bench.serve import (
    DASHBOARD_TOKEN,
    GITHUB_SECRET,
    REGISTRY_SECRET,
    WEBHOOK_TOKEN,
    Receiver,
    ServeProcess,
    remote_log,
    serve_env,
    wait_for,
)
from bench.users import GIT_USER, REGISTRY_USER
from tagtrail_demo import ImagePusher, RegistryServer


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


SECRETS = {
    "registry password": REGISTRY_USER[1],
    "registry basic auth": _basic(*REGISTRY_USER),
    "git password": GIT_USER[1],
    "git basic auth": _basic(*GIT_USER),
    "dashboard token": DASHBOARD_TOKEN,
    "registry webhook secret": REGISTRY_SECRET,
    "github webhook secret": GITHUB_SECRET,
    "generic webhook token": WEBHOOK_TOKEN,
}


def leaks(where: str, content: bytes | str) -> list[str]:
    data = content.encode() if isinstance(content, str) else content
    return [f"{name} in {where}" for name, value in SECRETS.items() if value.encode() in data]


@pytest.fixture
def secret_registry(tmp_path_factory: pytest.TempPathFactory, hook_port: int) -> Iterator[RegistryServer]:
    """A registry with htpasswd auth that notifies serve of each push with the shared secret."""
    url = f"http://127.0.0.1:{hook_port}/hooks/registry"
    with RegistryServer(
        tmp_path_factory.mktemp("secret-registry"),
        users=dict([REGISTRY_USER]),
        notify=(url, f"Bearer {REGISTRY_SECRET}"),
    ) as server:
        yield server


@pytest.fixture
def secret_lab(
    tmp_path: Path, secret_registry: RegistryServer, repo_name: str, http_remote: Remote, receiver: Receiver
) -> Homelab:
    with ImagePusher(secret_registry.url, auth=REGISTRY_USER) as pusher:
        lab = make_homelab(
            tmp_path / "homelab",
            secret_registry,
            pusher,
            repo_name.replace("/", "-"),
            tags_per_app=4,
            config_extra=f"serve:\n  interval: 1h\n  coalesce_max: 2s\nnotify:\n  urls: ['{receiver.url}']\n",
        )
    docker = Path.home() / ".docker"
    docker.mkdir(exist_ok=True)
    (docker / "config.json").write_text(
        json.dumps({"auths": {secret_registry.host: {"auth": _basic(*REGISTRY_USER)}}})
    )
    git(lab.root, "remote", "add", "origin", http_remote.url)  # the URL carries the git password
    git(lab.root, "push", "-q", "-u", "origin", "main")
    return lab


def _new_build(lab: Homelab, registry: RegistryServer, app: str, *, rebuild: bool = False) -> str:
    """A CI run: a commit changing `app` pushed, then its image; or a rebuild of HEAD (a base-image fix)."""
    if rebuild:
        sha = git(lab.root, "rev-parse", "HEAD")
    else:
        sha = commit(lab.root, {f"apps/{app}/change.txt": f"{datetime.now(UTC)}\n"}, f"change {app}")
        git(lab.root, "push", "-q", "origin", "main")
    tag = SCHEME.format(branch="main", sha=sha, time=datetime.now(UTC).replace(microsecond=0))
    with ImagePusher(registry.url, auth=REGISTRY_USER) as pusher:
        pusher.push_image(f"{lab.prefix}/{app}", tag, created=datetime.now(UTC))
    return tag


def test_no_secret_reaches_logs_pages_metrics_notifications_or_the_decision_log(
    secret_lab: Homelab,
    secret_registry: RegistryServer,
    hook_port: int,
    http_remote: Remote,
    receiver: Receiver,
) -> None:
    lab = secret_lab
    seen: list[tuple[str, bytes]] = []

    def keep(where: str, response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        seen.append((f"{where} ({response.status_code})", headers.encode() + b"\n" + response.content))
        return response

    before = len(remote_log(http_remote))
    served = ServeProcess(lab.root, port=hook_port, env=serve_env()).start()
    try:
        wait_for(lambda: len(remote_log(http_remote)) > before, 60, f"the first deploy\n{served.output()}")

        # Webhooks, right and wrong. The registry's own notification of the push carries its secret.
        tag = _new_build(lab, secret_registry, "lights")
        wait_for(lambda: tag in " ".join(remote_log(http_remote)[:1]), 60, f"the deploy of {tag}")
        envelope = {
            "events": [
                {
                    "action": "push",
                    "target": {
                        "repository": f"{lab.prefix}/doorbell",
                        "tag": "x",
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    },
                }
            ]
        }
        keep(
            "registry hook, wrong secret",
            served.post("/hooks/registry", json=envelope, headers={"Authorization": "Bearer wrong-one"}),
        )
        keep(
            "registry hook",
            served.post(
                "/hooks/registry", json=envelope, headers={"Authorization": f"Bearer {REGISTRY_SECRET}"}
            ),
        )
        event = {
            "action": "published",
            "registry_package": {
                "package_type": "CONTAINER",
                "name": "doorbell",
                "namespace": "acme",
                "package_version": {"container_metadata": {"tag": {"name": "v1"}}},
            },
        }
        body = json.dumps(event).encode()
        signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
        github = {
            "X-GitHub-Event": "registry_package",
            "X-GitHub-Delivery": "d-1",
            "Content-Type": "application/json",
        }
        keep(
            "github hook",
            served.post("/hooks/github", content=body, headers={**github, "X-Hub-Signature-256": signature}),
        )
        keep(
            "github hook, bad signature",
            served.post(
                "/hooks/github",
                content=body,
                headers={**github, "X-GitHub-Delivery": "d-2", "X-Hub-Signature-256": "sha256=00"},
            ),
        )
        keep(
            "generic hook",
            served.post(
                "/hooks/generic",
                json={"image": f"{lab.image}/chime"},
                headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
            ),
        )
        keep(
            "generic hook, wrong token",
            served.post("/hooks/generic", json={"image": "x"}, headers={"Authorization": "Bearer nope"}),
        )

        # The dashboard: a wrong token, the right one, every page, a rollback.
        origin = {"Origin": served.url}
        with httpx.Client(base_url=served.url, timeout=30, follow_redirects=True) as browser:
            keep("login form", browser.get("/login"))
            keep(
                "wrong sign-in",
                browser.post("/login", data={"name": "sam", "token": "not-it"}, headers=origin),
            )
            keep(
                "sign-in",
                browser.post(
                    "/login",
                    data={"name": "sam", "token": DASHBOARD_TOKEN, "next": "/apps/lights"},
                    headers=origin,
                ),
            )
            page = keep("app page", browser.get("/apps/lights")).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf is not None, page
            history = re.findall(r'name="to" value="([^"]+)"', page)
            assert history, page  # the builds it can go back to (the running one has no button)
            keep(
                "rollback",
                browser.post(
                    "/apps/lights/rollback", data={"csrf": csrf[1], "to": history[0]}, headers=origin
                ),
            )
            for path in ("/", "/apps/doorbell", "/apps/nope", "/metrics", "/healthz", "/readyz"):
                keep(path, browser.get(path))
        wait_for(lambda: "rollback" in remote_log(http_remote)[0], 60, "the dashboard's rollback")

        # A push the remote refuses: the failure is logged, shown and notified, with the remote named.
        hook = http_remote.path / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
        hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
        _new_build(lab, secret_registry, "chime", rebuild=True)  # lights is pinned by the rollback
        wait_for(
            lambda: any("failed" in t for t in receiver.titles()),
            60,
            f"a failure notice: {receiver.titles()}",
        )
        keep("/ after the failure", httpx.get(served.url + "/", timeout=30))
        keep("/metrics after the failure", httpx.get(served.url + "/metrics", timeout=30))
    finally:
        assert served.stop() == 0, served.output()

    assert len(seen) >= 15
    # the scan finds what is there: the checkout's own config holds the remote's URL with its password
    assert leaks("the test's checkout", (lab.root / ".git/config").read_bytes()) == [
        "git password in the test's checkout"
    ]
    assert "signed in" in served.output()  # the log the scan reads is the whole of it, not an empty file
    found = leaks("serve's output", served.output())
    for where, content in seen:
        found += leaks(where, content)
    found += leaks("notifications", json.dumps(receiver.messages))
    state = Path.home() / ".local/state"
    databases = [p for p in state.rglob("*") if p.is_file() and ".sqlite" in p.name]
    assert databases, f"no decision log under {state}"
    for database in databases:
        found += leaks(str(database), database.read_bytes())
    found += leaks("deploy commits", git(http_remote.path, "log", "--format=%B", "main"))
    assert not found, found
    assert receiver.messages, "the flow sent notifications"
    assert "protected branch" in json.dumps(receiver.messages) or "rejected" in json.dumps(receiver.messages)


def test_the_demo_prints_no_secret_from_its_environment(tmp_path: Path) -> None:
    env = serve_env({"TAGTRAIL_GIT_TOKEN": GIT_USER[1], "REGISTRY_PASSWORD": REGISTRY_USER[1]})
    result = subprocess.run(
        [sys.executable, "-m", "tagtrail", "demo", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    found = leaks("the demo's output", result.stdout + result.stderr)
    for path in [*tmp_path.rglob("*.sqlite*"), *(Path.home() / ".local/state").rglob("*.sqlite*")]:
        found += leaks(str(path), path.read_bytes())
    assert not found, found
