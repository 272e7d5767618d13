"""plan, deploy, status, history, rollback, pin and unpin against the real registry and real git remotes,
on a homelab shaped like DESIGN.md's example. DESIGN's invariants are the acceptance criteria."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import Remote, git
from bench.homelab import APPS, SCHEME, Homelab, make_homelab
from tagtrail.adapters.trailers import groups as trailers
from tagtrail_demo import ImagePusher, RegistryServer


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
        image = lab.newest[app]
        for name in (
            f"{lab.image}/{app}",
            f"registry.lan:32000/{app}",
        ):  # an alias stays as the user wrote it
            expected = expected.replace(f"{name}:bootstrap", f"{name}:{image.tag}@{image.digest}")
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
    assert buttons["Tagtrail-To"] == newest_ref(lab, "buttons")  # the image deployed, by its canonical name
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
    code, _, _ = run(capsys, "deploy", "--detailed-exitcode")
    assert code == 2  # nothing to do, told apart from a deploy


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
        # the tag list, then the winner read by tag (index, child, config: its revision label, and its digest
        # from the bytes, so nothing is left to prove before writing it)
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


def git_wrapper(tmp_path: Path, on_push: str) -> Path:
    """A `git` for PATH that runs `on_push` (shell) when tagtrail pushes, then the real git: the timing of
    another writer or a fault is arranged; the clones, the remote and git itself are real. Returns its folder."""
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nif [ "$1" = push ]; then\n{on_push}\nfi\nexec /usr/bin/git "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper.parent


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
    marker = tmp_path / "pushed-once"
    folder = git_wrapper(
        tmp_path,
        f'  if [ ! -e "{marker}" ]; then touch "{marker}";'
        f' ( cd "{other}" && echo readme > README.other && /usr/bin/git add README.other &&'
        f' /usr/bin/git commit -qm "someone else" && /usr/bin/git push -q origin main ); fi',
    )
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    code, out, err = run(capsys, "deploy", "lights", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["pushed"]
    assert result["attempts"] == 2
    log = remote_log(file_remote)
    assert log[:2] == ["deploy: lights " + lab.newest["lights"].tag, "someone else"]  # on top, nothing forced
    assert len(log) == 8


def test_a_rollback_pushed_while_tagtrail_retries_is_never_overwritten(
    capsys: pytest.CaptureFixture[str],
    lab: Homelab,
    file_remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A person rolls lights back (and pins it) from another clone at the moment tagtrail pushes a newer
    build: tagtrail's push is rejected, and deciding again on the new head (files and tagtrail.yaml) keeps
    the rollback instead of pushing the newer build over it."""
    other = tmp_path / "other-clone"
    git(tmp_path, "clone", "-q", file_remote.url, other.name)
    old_tag = SCHEME.format(branch="main", sha=lab.commits[1], time=lab_time(1))
    marker = tmp_path / "pushed-once"
    folder = git_wrapper(
        tmp_path,
        f'  if [ ! -e "{marker}" ]; then touch "{marker}";'
        f' ( cd "{other}" && PATH="{os.environ["PATH"]}" "{sys.executable}" -m tagtrail rollback lights'
        f' --to {old_tag} >"{tmp_path}/rollback.log" 2>&1 ); fi',
    )
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    code, out, err = run(capsys, "deploy", "lights", "--json")
    assert code == 0, out + err
    assert (tmp_path / "rollback.log").read_text().count("rolled back") == 1
    result = json.loads(out)
    assert (result["attempts"], result["commit"], result["changed"]) == (2, None, [])
    assert remote_log(file_remote)[0] == f"rollback: lights {old_tag}"  # the person's commit is the head
    stack = git(file_remote.path, "show", "main:pulumi/Pulumi.prod.yaml")
    assert f"lights:{old_tag}@" in stack
    assert lab.newest["lights"].tag not in stack
    [lights] = result["apps"]
    assert (lights["action"], lights["reason"]) == ("hold", "pinned")


def test_a_crash_before_the_push_leaves_one_commit_after_the_rerun(
    capsys: pytest.CaptureFixture[str],
    lab: Homelab,
    file_remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = git_wrapper(tmp_path, "  kill -9 $$")
    with monkeypatch.context() as patch:
        patch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
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
    assert code == 4, err  # some apps could not be read: not a success, though the others were deployed
    assert "not deployed, their registry could not be read: chime" in err
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


def test_a_push_the_remote_refuses_fails_at_once_with_what_it_said(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    """A hook that declines is not someone else pushing: no six retries, no 'pushes constantly'."""
    hook = file_remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'deploys are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    code, _, err = run(capsys, "deploy", "lights")
    assert code == 1
    assert "cannot push to origin (main)" in err
    assert "pre-receive hook declined" in err
    assert "constantly" not in err
    assert len(remote_log(file_remote)) == 6


def test_a_push_that_landed_although_git_said_it_failed_is_recorded_as_deployed(
    capsys: pytest.CaptureFixture[str],
    lab: Homelab,
    file_remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = git_wrapper(tmp_path, '  /usr/bin/git "$@"; exit 128')  # pushed, then the connection "drops"
    with monkeypatch.context() as patch:
        patch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
        code, out, err = run(capsys, "deploy", "chime", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["pushed"]
    assert remote_log(file_remote)[0].startswith("deploy: chime ")
    code, out, _ = run(capsys, "deploy", "chime", "--json")
    assert json.loads(out)["commit"] is None  # nothing left to do, no duplicate
    assert len(remote_log(file_remote)) == 7


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the checkout's deploy lock, as a running tagtrail would."""
    script = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, f'{os.getpid()}\\n'.encode())\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    holder.stdout.close()  # it prints nothing more
    return holder


def test_a_deploy_waits_for_another_tagtrail_in_the_same_checkout(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    git_dir = Path(git(lab.root, "rev-parse", "--absolute-git-dir"))
    holder = _hold_lock(git_dir / "tagtrail.lock", 2)
    try:
        code, _, err = run(capsys, "deploy", "chime")
    finally:
        holder.wait()
    assert code == 0, err
    assert f"another tagtrail is deploying from this checkout (pid {holder.pid}); waiting" in err
    assert remote_log(file_remote)[0].startswith("deploy: chime ")
    assert not (git_dir / "tagtrail-worktree").exists()  # no stray worktree


def test_a_deploy_gives_up_waiting_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote
) -> None:
    config = lab.root / "tagtrail.yaml"
    config.write_text(config.read_text() + "    lock_timeout: 1s\n")
    git_dir = Path(git(lab.root, "rev-parse", "--absolute-git-dir"))
    holder = _hold_lock(git_dir / "tagtrail.lock", 30)
    try:
        code, _, err = run(capsys, "deploy", "chime")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    assert f"another tagtrail (pid {holder.pid}) has been deploying from {git_dir} for over 1 s" in err
    assert "Traceback" not in err
    assert len(remote_log(file_remote)) == 6


def test_then_never_sees_tagtrails_secrets(
    capsys: pytest.CaptureFixture[str], lab: Homelab, file_remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tagtrail.yaml on the deploy branch is code: `then: env > file` must not hand out the dashboard
    token, webhook secrets or registry credentials, only the basics and what then_env names."""
    secrets = {
        "TAGTRAIL_TOKEN": "dashboard-secret-4f1c",
        "TAGTRAIL_GITHUB_WEBHOOK_SECRET": "hook-secret-77aa",
        "REGISTRY_PASSWORD": "registry-secret-0c3e",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUBECONFIG", "/tmp/kubeconfig-for-then")
    config = lab.root / "tagtrail.yaml"
    seen = lab.root.parent / "then-env.txt"
    config.write_text(config.read_text() + f'    then: "env > {seen}"\n    then_env: [KUBECONFIG]\n')
    code, _, err = run(capsys, "deploy", "chime")
    assert code == 0, err
    env = seen.read_text()
    for value in secrets.values():
        assert value not in env
    assert "KUBECONFIG=/tmp/kubeconfig-for-then" in env
    assert "PATH=" in env
