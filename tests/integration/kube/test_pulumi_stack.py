"""deploy.git.applied_by.pulumi_stack on the real control plane (issue 30): the operator's Stack CRD installed
in the API server, and each Stack's status written through its status subresource as the operator writes it
after a Pulumi update. tagtrail follows the Stack after a deploy commit and says, in `deploy --wait`,
`status` and the decision log, whether the operator applied the commit, failed on it, or did not get to it."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from lightkube import Client

from bench.cli import run
from bench.git import commit, git
from bench.kube import ControlPlane
from bench.kubelab import Lab, NewLab
from bench.kubelet import Kubelet
from bench.pulumi import CRD, create_stack, install_crd, operator, write_status
from bench.serve import Receiver, ServeProcess, wait_for
from tagtrail.adapters.history import DecisionLog, DecisionRecord, default_log_path
from tagtrail.config import load_config
from tagtrail.reconcile import Reconciler
from tagtrail.reconcile.applied import Applying, Deployed, follow_applied, pending

from .test_faults import use_kubeconfig
from .test_rbac import role_rules

SHARED = Path(__file__).parents[3].parent / "shared" / "pulumi-operator" / "pulumi.com_stacks.yaml"
STACK = "homeslice-prod"
PERMALINK = "https://app.pulumi.com/acme/homeslice/prod/updates/7"


@pytest.fixture(scope="module")
def stack_crd(control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        install_crd(client)


@pytest.fixture
def lab(new_lab: NewLab, stack_crd: None, admin: Client, monkeypatch: pytest.MonkeyPatch) -> Lab:
    made = new_lab(mode="gitops", extra="  follow: 0s\n")
    monkeypatch.chdir(made.root)
    configure(made, "      timeout: 60s\n")
    create_stack(admin, made.namespace, STACK, f"file://{made.root}")
    return made


def configure(lab: Lab, more: str) -> None:
    """deploy.git applied by the test's Stack (instead of `then`), with `more` settings of applied_by."""
    path = lab.root / "tagtrail.yaml"
    lines = [line for line in path.read_text().splitlines(keepends=True) if "then: kubectl" not in line]
    if "applied_by:" in path.read_text():  # the lab's own settings replaced by the test's
        path.write_text("".join(lines).replace("      timeout: 60s\n", more))
        commit(lab.root, {}, "the test's applied_by")
        return
    text = "".join(lines).replace(
        "    files: [deploy/web.yaml]\n",
        "    files: [deploy/web.yaml]\n    push: false\n    applied_by:\n"
        f"      pulumi_stack: {{namespace: {lab.namespace}, name: {STACK}}}\n{more}",
    )
    path.write_text(text)
    commit(lab.root, {}, "tagtrail follows the Stack")


def head(lab: Lab) -> str:
    return git(lab.root, "rev-parse", "HEAD")


def deploy_while_the_operator(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client, state: str, *args: str, message: str = ""
) -> tuple[int, str, str]:
    """`deploy --wait ARGS` while the operator updates the Stack once the deploy commit lands."""
    with operator(admin, lab.namespace, STACK, lab.root, state, message=message, permalink=PERMALINK):
        return run(capsys, "deploy", "--wait", *args)


def applies(app: str) -> list[DecisionRecord]:
    return [r for r in DecisionLog(default_log_path()).recent(app, 50) if r.action == "apply"]


def status_of(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    [web] = json.loads(out)
    return dict(web)


def lead_samples(capsys: pytest.CaptureFixture[str]) -> int:
    code, out, err = run(capsys, "report", "--json", "--since", "30d")
    assert code == 0, err
    samples: int = json.loads(out)["overall"]["lead_time_samples"]
    return samples


def test_the_fixture_is_the_operators_crd_byte_for_byte() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} is not beside this clone; the copy in tests/fixtures is used alone")
    assert gzip.decompress(CRD.read_bytes()) == SHARED.read_bytes()


def test_a_commit_the_stack_applies_is_applied(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    code, out, err = deploy_while_the_operator(capsys, lab, admin, "succeeded", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["applied"]["state"] == "applied"
    assert result["applied"]["commit"] == result["commit"] == head(lab)
    [logged] = applies("web")
    assert (logged.reason, logged.outcome, logged.commit) == ("applied", "applied", head(lab))
    assert PERMALINK in logged.sentence
    web = status_of(capsys)
    assert web["applied"] == {
        "commit": head(lab),
        "state": "applied",
        "message": None,
        "permalink": PERMALINK,
        "rolled_back": {},
    }
    code, out, _ = run(capsys, "status")
    assert "APPLIED" in out
    assert f"applied {PERMALINK}" in out
    assert lead_samples(capsys) == 1  # the deploy's lead time ends when the Stack applied it


def test_a_failed_update_is_recorded_with_the_operators_message_and_left_in_git(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    before = head(lab)
    message = "error: update failed: Deployment web: ImagePullBackOff"

    code, out, err = deploy_while_the_operator(capsys, lab, admin, "failed", message=message)
    assert code == 1, out + err
    assert f"the Stack failed to apply it: {message}" in err
    deployed = head(lab)
    assert deployed != before
    [logged] = applies("web")
    assert (logged.reason, logged.outcome, logged.commit) == ("apply-failed", "failed", deployed)
    assert message in logged.sentence
    web = status_of(capsys)
    assert web["applied"]["state"] == "failed"  # type: ignore[index]
    assert web["applied"]["message"] == message  # type: ignore[index]
    assert web["pinned"] is None
    code, out, _ = run(capsys, "status")
    assert f"failed: {message}" in " ".join(out.split())


def test_a_failed_update_is_rolled_back_and_pinned_where_configured(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    configure(lab, "      timeout: 60s\n      rollback: true\n")
    code, out, err = deploy_while_the_operator(capsys, lab, admin, "failed", "--json", message="boom")
    assert code == 1, out + err
    result = json.loads(out)
    assert result["applied"]["state"] == "failed"
    assert result["applied"]["rolled_back"] == {"web": lab.builds["web"][0].tag}
    assert head(lab) != result["commit"]  # the rollback is a commit of its own, after the deploy's
    web = status_of(capsys)
    assert web["pinned"] == lab.builds["web"][0].tag
    assert lab.builds["web"][0].digest in (lab.root / "deploy" / "web.yaml").read_text()
    assert [r.reason for r in applies("web")] == ["apply-failed"]


def test_a_stack_stuck_at_an_older_commit_is_not_applied_after_the_timeout(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    configure(lab, "      timeout: 1s\n")
    older = head(lab)
    write_status(admin, lab.namespace, STACK, "succeeded", attempted=older, applied=older)
    code, out, err = run(capsys, "deploy", "--wait", "--json")
    assert code == 1, out + err
    result = json.loads(out)
    assert result["applied"]["state"] == "not-applied"
    assert f"it last applied {older[:12]}" in result["applied"]["message"]
    [logged] = applies("web")
    assert (logged.reason, logged.outcome) == ("not-applied", "not applied")
    assert status_of(capsys)["applied"]["state"] == "not-applied"  # type: ignore[index]
    assert lead_samples(capsys) == 0  # never applied: no lead time, though it was pushed


def test_a_newer_commit_applied_before_tagtrail_looked_counts_as_applied(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, out + err
    deployed = json.loads(out)["commit"]
    assert status_of(capsys)["applied"]["state"] == "pending"  # type: ignore[index]
    newer = commit(lab.root, {"pulumi/README.md": "later\n"}, "a later commit of the deploy branch")
    write_status(admin, lab.namespace, STACK, "succeeded", attempted=newer, applied=newer)
    web = status_of(capsys)
    assert web["applied"]["state"] == "applied"  # type: ignore[index]
    assert web["applied"]["commit"] == deployed  # type: ignore[index]


SERVE = "serve:\n  interval: 1s\n  public: true\nnotify:\n  urls: ['{url}']\n"


def serving(lab: Lab, receiver: Receiver) -> ServeProcess:
    path = lab.root / "tagtrail.yaml"
    if "serve:" not in path.read_text():
        path.write_text(path.read_text() + SERVE.format(url=receiver.url))
        commit(lab.root, {}, "serve")
    return ServeProcess(lab.root).start()


def serve_until_pending(lab: Lab, receiver: Receiver) -> tuple[ServeProcess, str, str]:
    """serve started, its deploy commit made and followed (the Stack pending): the process, the commit and
    the stack as /metrics names it."""
    process = serving(lab, receiver)
    stack = f"stack/{lab.namespace}/{STACK}"
    try:
        deployed = deploy_commit(process)
        wait_for(lambda: process.metric("tagtrail_pulumi_stack_state", stack=stack, state="pending") == 1.0)
    except BaseException:
        process.stop()
        print(process.output())  # shown only when the test fails
        raise
    return process, deployed, stack


def deploy_commit(process: ServeProcess) -> str:
    """The deploy commit serve made, from the decision log."""

    def made() -> list[str]:
        rows = DecisionLog(default_log_path()).recent("web", 50)
        return [r.commit for r in rows if r.action == "deploy" and r.commit]

    found: list[str] = wait_for(made, 60, f"a deploy commit\n{process.output()}")
    return found[0]


def dashboard_with(process: ServeProcess, marker: str) -> str:
    def page() -> str | None:
        text = process.get("/").text
        return text if marker in text else None

    found: str = wait_for(page, 30, f"{marker} on the dashboard")
    return found


def test_serve_tells_a_failed_apply_on_the_dashboard_in_metrics_and_to_people(
    lab: Lab, admin: Client, receiver: Receiver
) -> None:
    process, deployed, stack = serve_until_pending(lab, receiver)
    try:
        message = "error: update failed: Deployment web: ImagePullBackOff"
        write_status(
            admin,
            lab.namespace,
            STACK,
            "failed",
            attempted=deployed,
            applied=lab.commits[0],
            message=message,
            permalink=PERMALINK,
        )
        wait_for(lambda: "tagtrail: web failed to apply" in receiver.titles(), 30, "the notification")
        [told] = [m for m in receiver.messages if m["title"] == "tagtrail: web failed to apply"]
        assert message in told["message"]
        assert process.metric("tagtrail_pulumi_stack_state", stack=stack, state="failed") == 1.0
        assert process.metric("tagtrail_pulumi_stack_state", stack=stack, state="pending") == 0.0
        assert process.metric("tagtrail_applies_total", stack=stack, result="failed") == 1.0
        page = dashboard_with(process, "apply-failed")
        assert message in page
        assert f'href="{PERMALINK}"' in page
        assert [r.reason for r in applies("web")] == ["apply-failed"]
    finally:
        code = process.stop()
        print(process.output())  # shown only when the test fails
    assert code == 0, process.output()


def test_a_restarted_serve_follows_the_deploy_commit_it_was_waiting_for(
    lab: Lab, admin: Client, receiver: Receiver
) -> None:
    process, deployed, stack = serve_until_pending(lab, receiver)
    assert process.stop() == 0, process.output()
    assert applies("web") == []  # stopped while the Stack had not got to it
    write_status(admin, lab.namespace, STACK, "succeeded", attempted=deployed, applied=deployed)
    process = serving(lab, receiver)
    try:
        wait_for(
            lambda: process.metric("tagtrail_applies_total", stack=stack, result="applied") == 1.0,
            30,
            f"the restarted serve to judge {deployed[:12]}\n{process.output()}",
        )
        [logged] = applies("web")
        assert (logged.reason, logged.commit, logged.actor) == ("applied", deployed, "tagtrail serve")
        page = dashboard_with(process, "apply-applied")
        assert deployed[:12] in page
    finally:
        code = process.stop()
        print(process.output())  # shown only when the test fails
    assert code == 0, process.output()


def test_the_shipped_role_is_enough_and_each_of_its_rules_is_needed(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client, control_plane: ControlPlane
) -> None:
    """With observe.yaml's rules for the workloads and pulumi-stack.yaml's for the Stack, a deploy is
    followed until applied and status reads it; without one rule of pulumi-stack.yaml, the command that
    needs it says which right is missing."""
    observe, stacks = role_rules("observe.yaml"), role_rules("pulumi-stack.yaml")
    token = control_plane.service_account_token(lab.namespace, "tagtrail", observe + stacks)
    use_kubeconfig(lab, control_plane.kubeconfig_dict(token))
    code, out, err = deploy_while_the_operator(capsys, lab, admin, "succeeded", "--json")
    assert code == 0, out + err
    assert json.loads(out)["applied"]["state"] == "applied"
    assert status_of(capsys)["applied"]["state"] == "applied"  # type: ignore[index]
    for index, rule in enumerate(stacks):
        kept = [r for i, r in enumerate(stacks) if i != index]
        token = control_plane.service_account_token(lab.namespace, f"without-{index}", observe + kept)
        use_kubeconfig(lab, control_plane.kubeconfig_dict(token))
        git(lab.root, "revert", "--no-edit", "HEAD")  # the deploy undone: the next one has work to do
        _, out, err = run(capsys, "status")
        said = out + err
        code, out, err = run(capsys, "deploy", "--wait")  # the Stack does not move: followed by a watch
        said += out + err
        assert code == 1, said
        [verb] = rule.verbs
        wanted = f"forbids tagtrail to {verb} stacks.pulumi.com {STACK} in {lab.namespace}"
        assert wanted in said, f"without {verb} nothing said so:\n{said}"


def test_a_commit_applied_while_nobody_watched_is_applied_even_after_the_timeout(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client
) -> None:
    """A serve restarted long after its deploy commit: the Stack applied it meanwhile, so it is applied,
    not `not-applied` for want of time left to watch; and nothing is left pending after that."""
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, out + err
    deployed = json.loads(out)["commit"]
    write_status(admin, lab.namespace, STACK, "succeeded", attempted=deployed, applied=deployed)

    async def restarted() -> tuple[Applying | None, Deployed | None]:
        path = lab.root / "tagtrail.yaml"
        async with Reconciler.open(load_config(path), path) as reconciler:
            found = await pending(reconciler)
            assert found is not None
            assert found.commit == deployed
            long_ago = Deployed(found.commit, found.time - timedelta(hours=2), found.apps)
            result = await follow_applied(reconciler, long_ago, actor="tagtrail serve")
            return result, await pending(reconciler)

    result, left = asyncio.run(restarted())
    assert result is not None
    assert result.state == "applied"
    assert left is None
    assert [r.reason for r in applies("web")] == ["applied"]


def test_an_applied_commit_is_then_followed_into_the_cluster(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client, kubeconfig: Path, kubelet: Kubelet
) -> None:
    """With kubernetes.follow, what the Stack applied is followed until the cluster runs it, as today (the
    operator's `pulumi up` played by kubectl apply, as deploy.git.then)."""
    apply = f"kubectl --kubeconfig={kubeconfig} apply -f deploy/web.yaml"
    subprocess.run(apply.split(), cwd=lab.root, check=True, capture_output=True, timeout=60)
    path = lab.root / "tagtrail.yaml"
    text = path.read_text().replace("  follow: 0s\n", "  follow: 60s\n")
    path.write_text(text.replace("    push: false\n", f"    push: false\n    then: {apply}\n"))
    commit(lab.root, {}, "the cluster followed too")
    code, out, err = deploy_while_the_operator(capsys, lab, admin, "succeeded", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["applied"]["state"] == "applied"
    [followed] = result["followed"]
    assert followed["ok"], followed
    assert "the cluster runs it" in followed["sentence"]
