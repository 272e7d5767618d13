"""plan, deploy, status, history, rollback, pin and unpin against the real registry and real git remotes,
on a homelab shaped like DESIGN.md's example. DESIGN's invariants are the acceptance criteria."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import Remote, git
from bench.homelab import APPS, SCHEME, Homelab, make_homelab
from tagtrail.history import trailers
from tagtrail.sandbox import ImagePusher, RegistryServer


@pytest.fixture
def lab(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    file_remote: Remote,
    monkeypatch: pytest.MonkeyPatch,
) -> Homelab:
    homelab = make_homelab(tmp_path / "homelab", registry, pusher, repo_name.replace("/", "-"))
    git(homelab.root, "remote", "add", "origin", file_remote.url)
    git(homelab.root, "push", "-q", "-u", "origin", "main")
    monkeypatch.chdir(homelab.root)
    return homelab


def newest_ref(lab: Homelab, app: str) -> str:
    image = lab.newest[app]
    return f"{lab.image}/{app}:{image.tag}@{image.digest}"


def remote_log(remote: Remote) -> list[str]:
    return git(remote.path, "log", "--format=%s", "main").splitlines()


def test_plan_shows_each_app_and_exits_2_when_deploys_are_pending(
    capsys: pytest.CaptureFixture[str], lab: Homelab
) -> None:
    code, out, err = run(capsys, "plan", "--exit-code", "--json")
    assert code == 2, err
    plans = {p["app"]: p for p in json.loads(out)}
    assert sorted(plans) == sorted(APPS)
    for app in APPS:
        p = plans[app]
        assert (p["action"], p["reason"]) == ("deploy", "running-unknown")
        assert p["target"]["tag"] == lab.newest[app].tag
        assert p["target"]["digest"] == lab.newest[app].digest  # the multi-arch index's
        assert p["target"]["commit"] == lab.commits[-1][:7]
        assert p["built_from"] == lab.commits[-1]  # the source repo resolves the short sha
        # one tag list, then the winner read once: the index (its digest), the linux/amd64 manifest and its
        # config (the revision label checked against the commit); no HEAD: the minimum with that check
        assert p["requests"] == 4
        assert p["ignored"]["other-branch"] > 0
        assert p["ignored"]["other-scheme"] == 4
    code, out, _ = run(capsys, "plan")
    assert code == 0
    assert out.splitlines()[0].split() == ["APP", "RUNNING", "NEWEST", "ELIGIBLE", "ACTION", "WHY"]


def test_deploy_writes_one_commit_that_changes_only_the_references(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    before = lab.stack.read_text()
    code, out, err = run(capsys, "deploy")
    assert code == 0, out + err
    after = git(lab.root, "show", "origin/main:pulumi/Pulumi.prod.yaml") + "\n"
    expected = before
    for app in APPS:
        for old in (f"{lab.image}/{app}:bootstrap", f"registry.lan:32000/{app}:bootstrap"):
            expected = expected.replace(old, newest_ref(lab, app))
    assert after == expected  # comments, quotes, the salt, nginx, traefik, the text block: byte for byte
    assert "nginx: nginx:1.25" in after
    assert "docker.io/traefik:v3.1" in after
    assert f"through {lab.image}/doorbell; this text" in after
    assert remote_log(file_remote)[0].startswith("deploy: 8 apps")
    message = git(file_remote.path, "log", "-1", "--format=%B", "main")
    groups = trailers(message)
    assert [g["Tagtrail-App"] for g in groups] == sorted(APPS)
    buttons = next(g for g in groups if g["Tagtrail-App"] == "buttons")
    assert buttons["Tagtrail-From"] == "registry.lan:32000/buttons:bootstrap"
    assert buttons["Tagtrail-To"] == newest_ref(lab, "buttons")  # the alias now names the canonical image
    assert buttons["Tagtrail-Commit"] == lab.commits[-1]
    assert buttons["Tagtrail-Reason"] == "running-unknown"
    assert (
        git(file_remote.path, "show", "--stat", "--format=", "main")
        .splitlines()[0]
        .strip()
        .startswith("pulumi/Pulumi.prod.yaml")
    )
    # The user's checkout was fast-forwarded: their files say what runs.
    assert lab.stack.read_text() == after
    # Again: nothing to do, no commit (re-running converges).
    code, _, err = run(capsys, "deploy")
    assert code == 0
    assert "nothing to deploy" in err
    assert len(remote_log(file_remote)) == 7


def test_plan_after_deploy_and_the_decision_log(
    capsys: pytest.CaptureFixture[str], lab: Homelab, isolated_home: Path
) -> None:
    run(capsys, "deploy")
    code, out, _ = run(capsys, "plan", "--exit-code", "--json")
    assert code == 0
    assert {p["action"] for p in json.loads(out)} == {"nothing"}
    log = isolated_home / ".local/state/tagtrail/decisions.sqlite"
    with sqlite3.connect(log) as db:
        rows = db.execute(
            'SELECT app, action, reason, actor, candidates, requests, "commit", outcome FROM decisions'
            " WHERE actor = 'tagtrail deploy'"
        ).fetchall()
    assert len(rows) == 8
    for app, action, reason, actor, candidates, requests, sha, outcome in rows:
        assert app in APPS
        assert (action, reason, actor, outcome) == ("deploy", "running-unknown", "tagtrail deploy", "pushed")
        assert candidates == len(json.loads(out)[0]["ignored"]) or candidates > 50
        assert requests == 4
        assert len(sha) == 40


def test_deploy_dry_run_shows_a_diff_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    code, out, _ = run(capsys, "deploy", "--dry-run", "gosonos")
    assert code == 0
    assert f"-    image: {lab.image}/gosonos:bootstrap" in out
    assert f"+    image: {newest_ref(lab, 'gosonos')}" in out
    assert len(remote_log(file_remote)) == 6
    assert "bootstrap" in lab.stack.read_text()


def test_a_rejected_push_is_retried_on_the_new_head(
    capsys: pytest.CaptureFixture[str],
    lab: Homelab,
    file_remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another clone pushes at the moment tagtrail pushes: a `git` on PATH that makes that clone push first,
    # once, then runs the real git. Both clones and the remote are real; only the timing is arranged.
    other = tmp_path / "other-clone"
    git(tmp_path, "clone", "-q", file_remote.url, other.name)
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    marker = tmp_path / "pushed-once"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = push ] && [ ! -e "{marker}" ]; then\n'
        f'  touch "{marker}"\n'
        f'  ( cd "{other}" && echo readme > README.other && /usr/bin/git add README.other &&'
        f' /usr/bin/git commit -qm "someone else" && /usr/bin/git push -q origin main )\n'
        "fi\n"
        'exec /usr/bin/git "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    code, out, err = run(capsys, "deploy", "lights", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["pushed"]
    assert result["attempts"] == 2
    log = remote_log(file_remote)
    assert log[:2] == ["deploy: lights " + lab.newest["lights"].tag, "someone else"]  # on top, nothing forced
    assert len(log) == 8


def test_a_crash_before_the_push_leaves_one_commit_after_the_rerun(
    capsys: pytest.CaptureFixture[str],
    lab: Homelab,
    file_remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text('#!/bin/sh\nif [ "$1" = push ]; then kill -9 $$; fi\nexec /usr/bin/git "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    with monkeypatch.context() as patch:
        patch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
        code, _, _ = run(capsys, "deploy", "chime")
    assert code != 0  # the push died: committed in the worktree, never pushed
    assert len(remote_log(file_remote)) == 6
    code, _, err = run(capsys, "deploy", "chime")
    assert code == 0, err
    assert len(remote_log(file_remote)) == 7
    code, _, _ = run(capsys, "deploy", "chime")
    assert len(remote_log(file_remote)) == 7  # no duplicate


def test_history_rollback_pin_and_unpin(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    run(capsys, "deploy", "doorbell")
    # A person edits the file by hand to an older build of main.
    old_tag = SCHEME.format(branch="main", sha=lab.commits[1], time=lab_time(1))
    git(lab.root, "pull", "-q", "--ff-only", "origin", "main")
    text = lab.stack.read_text()
    current = newest_ref(lab, "doorbell")
    lab.stack.write_text(text.replace(current, f"{lab.image}/doorbell:{old_tag}"))
    git(lab.root, "commit", "-qam", "doorbell: back to the old build by hand")
    git(lab.root, "push", "-q", "origin", "main")
    code, out, _ = run(capsys, "history", "doorbell", "--json")
    assert code == 0
    history = json.loads(out)
    assert [h["by"] for h in history][:2] == [
        "manual (Test Author <author@example.invalid>)",
        "tagtrail deploy",
    ]
    assert history[0]["tag"] == old_tag
    assert history[1]["reason"] == "running-unknown"
    # Roll back by commit (short sha): the newest build of that commit, pinned in the same commit.
    code, _, err = run(capsys, "rollback", "doorbell", "--to", lab.commits[2][:9])
    assert code == 0, err
    rebuilt = SCHEME.format(branch="main", sha=lab.commits[2], time=lab_time(2, hours=6))
    shown = git(file_remote.path, "show", "--format=%s", "--name-only", "main").splitlines()
    assert shown[0] == f"rollback: doorbell {rebuilt}"
    assert sorted(line for line in shown[1:] if line) == ["pulumi/Pulumi.prod.yaml", "tagtrail.yaml"]
    config = git(file_remote.path, "show", "main:tagtrail.yaml")
    assert f"  pins:\n    doorbell: {rebuilt}" in config
    # Automation holds a pinned app.
    code, out, _ = run(capsys, "plan", "doorbell", "--json")
    [plan] = json.loads(out)
    assert (plan["action"], plan["reason"]) == ("hold", "pinned")
    code, _, _ = run(capsys, "deploy", "doorbell")
    assert remote_log(file_remote)[0].startswith("rollback:")
    # Unpin (one commit), then deploy moves to the newest again.
    code, _, err = run(capsys, "unpin", "doorbell")
    assert code == 0, err
    assert remote_log(file_remote)[0] == "unpin: doorbell"
    assert "pins: {}" in git(file_remote.path, "show", "main:tagtrail.yaml")
    code, _, _ = run(capsys, "deploy", "doorbell")
    assert f"doorbell:{lab.newest['doorbell'].tag}@" in git(
        file_remote.path, "show", "main:pulumi/Pulumi.prod.yaml"
    )
    # Rollback with no --to: the previous entry of history.
    code, _, err = run(capsys, "rollback", "doorbell")
    assert code == 0, err
    assert f"doorbell:{rebuilt}@" in git(file_remote.path, "show", "main:pulumi/Pulumi.prod.yaml")


def lab_time(days: int, hours: int = 0) -> object:
    from datetime import timedelta

    from bench.homelab import START

    return START + timedelta(days=days, hours=hours)


def test_pin_deploys_the_tag_and_holds(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    tag = SCHEME.format(branch="main", sha=lab.commits[3], time=lab_time(3))
    code, _, err = run(capsys, "pin", "switches", tag)
    assert code == 0, err
    assert remote_log(file_remote)[0] == f"pin: switches {tag}"
    code, out, _ = run(capsys, "status", "switches", "--json")
    [status] = json.loads(out)
    assert status["pinned"] == tag
    assert status["running"]["tag"] == tag
    assert status["last_deploy"]["reason"] == "pin"
    assert status["behind"] == 2


def test_rollback_refuses_what_is_not_eligible(capsys: pytest.CaptureFixture[str], lab: Homelab) -> None:
    feature = next(t for t in lab.tags["lights"] if t.startswith("feature-login."))
    code, _, err = run(capsys, "rollback", "lights", "--to", feature)
    assert code == 1
    assert "only eligible builds are ever deployed" in err
    code, _, err = run(capsys, "rollback", "lights", "--to", "deadbeef")
    assert "no build of commit deadbeef" in err
    code, _, err = run(capsys, "rollback", "nosuchapp", "--to", "deadbeef")
    assert code == 1


def test_skip_ci_and_then(capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote) -> None:
    config = lab.root / "tagtrail.yaml"
    config.write_text(
        config.read_text() + '    skip_ci: true\n    then: "echo applied $(git log -1 --format=%h); exit 3"\n'
    )
    git(lab.root, "commit", "-qam", "skip ci and then")
    git(lab.root, "push", "-q", "origin", "main")
    code, _, err = run(capsys, "deploy", "clocktime")
    assert code == 1  # the deploy happened; `then` failed, and that is the exit code
    assert remote_log(file_remote)[0].endswith("[skip ci]")
    assert "applied" in err
    assert "failed with exit 3" in err


def test_a_registry_error_holds_that_app_and_writes_nothing_for_it(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    subprocess.run(
        ["rm", "-rf", str(lab.registry.storage / "docker/registry/v2/repositories" / lab.prefix / "chime")],
        check=True,
    )
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, err
    result = json.loads(out)
    chime = next(a for a in result["apps"] if a["app"] == "chime")
    assert (chime["action"], chime["reason"]) == ("hold", "registry-error")
    assert "chime" not in result["changed"]
    assert len(result["changed"]) == 7
    assert f"{lab.image}/chime:bootstrap" in git(file_remote.path, "show", "main:pulumi/Pulumi.prod.yaml")


def test_deploy_through_a_cache_clone_of_a_smart_http_remote(
    capsys: pytest.CaptureFixture[str],
    lab: Homelab,
    http_remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    git(lab.root, "push", "-q", http_remote.url, "main")
    elsewhere = tmp_path / "controller"
    elsewhere.mkdir()
    (elsewhere / ".git").mkdir()
    config = (
        (lab.root / "tagtrail.yaml")
        .read_text()
        .replace(
            "    files: [pulumi/Pulumi.prod.yaml]\n",
            f"    files: [pulumi/Pulumi.prod.yaml]\n    url: {http_remote.url}\n",
        )
    )
    (elsewhere / "tagtrail.yaml").write_text(config)
    monkeypatch.chdir(elsewhere)
    code, out, err = run(capsys, "deploy", "gosonos", "--json")
    assert code == 0, out + err
    assert json.loads(out)["pushed"]
    assert newest_ref(lab, "gosonos") in git(http_remote.path, "show", "main:pulumi/Pulumi.prod.yaml")
    assert "push-secret" not in err
