"""Deploy only what the deploy branch's workflow built, proven (deploy.verify.github): bundles made by a
Sigstore instance of the test's own (tests/bench/sigstore_local.py: a CA with Fulcio's GitHub extensions, a
CT log key, a transparency log key, the trusted root file naming them) over the images' own digests, attached
as OCI referrers in the real registry (through the `sha256-<hex>` fallback index: distribution 2.8 has no
referrers API), and the whole deploy path: plan, deploy, `tagtrail verify`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from test_provenance import Site, make_site

from bench.cli import run
from bench.git import Remote
from bench.sigstore_local import LocalSigstore, Run, attach
from tagtrail.config import load_config
from tagtrail.reconcile import Planned, Reconciler
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer

REPOSITORY = "acme/homelab"


@pytest.fixture(scope="module")
def sigstore() -> LocalSigstore:
    return LocalSigstore()


@pytest.fixture
def sites(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    file_remote: Remote,
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], Site]:
    """A site whose deploys need its workflow's proof (deploy.verify.require as given), the local
    instance's trusted root configured."""

    def make(require: str) -> Site:
        root = sigstore.write_trusted_root(tmp_path / "trust" / "trusted_root.json")
        extra = (
            f"  verify:\n    require: {require}\n    github:\n      repository: {REPOSITORY}\n"
            f"      trusted_root: {root}\n"
        )
        made = make_site(
            tmp_path / "site", file_remote, registry, pusher, repo_name.replace("/", "-"), extra=extra
        )
        monkeypatch.chdir(made.root)
        return made

    return make


@pytest.fixture
def site(sites: Callable[[str], Site]) -> Site:
    return sites("attestation")


def attest(site: Site, sigstore: LocalSigstore, image: PushedImage, run: Run) -> None:
    attach(site.pusher, image, sigstore.attest(run, f"{site.image}", image.digest))


def main_run(commit: str) -> Run:
    return Run(repository=REPOSITORY, commit=commit)


def plan(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = run(capsys, "plan", "--json")
    assert code == 0, err
    [web] = json.loads(out)
    return web  # type: ignore[no-any-return]


def test_an_attested_main_build_deploys(
    capsys: pytest.CaptureFixture[str], site: Site, sigstore: LocalSigstore
) -> None:
    build = site.push(site.main[-1], 1)
    attest(site, sigstore, build, main_run(site.main[-1]))
    web = plan(capsys)
    assert (web["action"], web["target"]["tag"], web["refused"]) == ("deploy", build.tag, [])  # type: ignore[index]
    code, _, err = run(capsys, "deploy")
    assert code == 0, err
    assert f"web:{build.tag}@{build.digest}" in site.deployed()


def _newer(site: Site, sigstore: LocalSigstore, case: str) -> tuple[PushedImage, str]:
    """A build newer than the attested one, and the reason it is refused."""
    sha = site.main[-1]
    newer = site.push(sha, 1, content=b"the newer build")
    runs = {
        "a feature branch's run": (
            replace(main_run(sha), ref="refs/heads/feature/x"),
            "attested-ref-mismatch",
        ),
        "another workflow": (
            replace(main_run(sha), workflow=".github/workflows/other.yml"),
            "attested-identity-mismatch",
        ),
        "another repository": (
            replace(main_run(sha), repository="mallory/homelab"),
            "attested-identity-mismatch",
        ),
        "a self-hosted runner": (replace(main_run(sha), runner="self-hosted"), "attested-identity-mismatch"),
        "another commit": (main_run(site.main[0]), "attested-commit-mismatch"),
    }
    if case in runs:
        made_by, reason = runs[case]
        attest(site, sigstore, newer, made_by)
        return newer, reason
    if case == "a bundle for another digest":
        other = site.push(sha, 3, content=b"some other image")
        attach(site.pusher, newer, sigstore.attest(main_run(sha), site.image, other.digest))
        return newer, "attestation-invalid"
    if case == "another trust root":
        attest(site, LocalSigstore(), newer, main_run(sha))
        return newer, "attestation-invalid"
    assert case == "no attestation"
    return newer, "not-attested"


@pytest.mark.parametrize(
    "case",
    [
        "a feature branch's run",
        "another workflow",
        "another repository",
        "a self-hosted runner",
        "another commit",
        "a bundle for another digest",
        "another trust root",
        "no attestation",
    ],
)
def test_a_build_without_the_deploy_branch_s_proof_is_refused(
    capsys: pytest.CaptureFixture[str], site: Site, sigstore: LocalSigstore, case: str
) -> None:
    good = site.push(site.main[-1], 2)
    attest(site, sigstore, good, main_run(site.main[-1]))
    newer, reason = _newer(site, sigstore, case)
    web = plan(capsys)
    assert (web["action"], web["target"]["tag"]) == ("deploy", good.tag)  # type: ignore[index]
    assert [(r["tag"], r["reason"]) for r in web["refused"]] == [(newer.tag, reason)]  # type: ignore[attr-defined]
    code, _, err = run(capsys, "deploy")
    assert code == 0, err
    deployed = site.deployed()
    assert f"web:{good.tag}@{good.digest}" in deployed
    assert newer.digest not in deployed


def test_nothing_attested_holds_with_the_reason(capsys: pytest.CaptureFixture[str], site: Site) -> None:
    site.push(site.main[-1], 1)
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, err
    [web] = json.loads(out)["apps"]
    assert (web["action"], web["reason"]) == ("hold", "not-attested")
    assert "bootstrap" in site.deployed()


def test_verify_prints_what_was_proven(
    capsys: pytest.CaptureFixture[str], site: Site, sigstore: LocalSigstore
) -> None:
    build = site.push(site.main[-1], 1)
    attest(site, sigstore, build, replace(main_run(site.main[-1]), run_id=777))
    code, out, err = run(capsys, "verify", f"{site.image}:{build.tag}")
    assert code == 0, out + err
    lines = out.splitlines()
    assert "ok      looked: referrers API: not offered by this registry" in lines
    assert (
        f"ok      looked: tag {build.digest.replace(':', '-')}: 1 referrer(s), 1 Sigstore bundle(s)" in lines
    )
    [proven] = [line for line in lines if line.startswith("ok      provenance: ")]
    assert proven.startswith(
        f"ok      provenance: attestation by {REPOSITORY}/.github/workflows/build.yml"
        f" run https://github.com/{REPOSITORY}/actions/runs/777/attempts/1, commit {site.main[-1]},"
        " ref refs/heads/main, log index "
    )
    assert (
        f"ok      attested: the run's ref and commit are the tag's (refs/heads/main, {site.main[-1]})"
        in lines
    )


def test_verify_says_why_a_feature_branch_build_is_refused(
    capsys: pytest.CaptureFixture[str], site: Site, sigstore: LocalSigstore
) -> None:
    build = site.push(site.main[-1], 1)
    attest(site, sigstore, build, replace(main_run(site.main[-1]), ref="refs/heads/feature/x"))
    code, out, _ = run(capsys, "verify", f"{site.image}:{build.tag}")
    assert code == 1
    [failed] = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failed == (
        f"FAIL    attested: attested-ref-mismatch: {build.tag}: attested by a run of refs/heads/feature/x,"
        " not refs/heads/main"
    )
    unattested = site.push(site.main[-1], 0.5, content=b"never attested")
    code, out, _ = run(capsys, "verify", f"{site.image}@{unattested.digest}")
    assert code == 1
    assert (
        f"FAIL    provenance: not-attested: no Sigstore bundle for {unattested.digest[:19]}… was found" in out
    )


def test_plan_and_status_say_which_run_attested_a_refused_build(
    capsys: pytest.CaptureFixture[str], site: Site, sigstore: LocalSigstore
) -> None:
    build = site.push(site.main[-1], 1)
    attest(site, sigstore, build, replace(main_run(site.main[-1]), ref="refs/heads/feature/x"))
    said = f"web: refused attested-ref-mismatch: {build.tag}: attested by a run of refs/heads/feature/x, not refs/heads/main"
    for command in ("plan", "status"):
        code, out, err = run(capsys, command)
        assert code == 0, err
        assert said in (out + err).splitlines(), command


@pytest.mark.parametrize(
    ("require", "made", "reason"),
    [
        ("signature", "signature", None),
        ("signature", "attestation", "not-attested"),
        ("either", "signature", None),
        ("either", "attestation", None),
        ("attestation", "signature", "not-attested"),
    ],
)
def test_what_deploy_verify_require_accepts(
    capsys: pytest.CaptureFixture[str],
    sites: Callable[[str], Site],
    sigstore: LocalSigstore,
    require: str,
    made: str,
    reason: str | None,
) -> None:
    site = sites(require)
    build = site.push(site.main[-1], 1)
    made_by = main_run(site.main[-1])
    if made == "signature":
        attach(site.pusher, build, sigstore.sign(made_by, build.digest), predicate=None)
    else:
        attest(site, sigstore, build, made_by)
    web = plan(capsys)
    if reason is None:
        assert (web["action"], web["target"]["tag"]) == ("deploy", build.tag)  # type: ignore[index]
    else:
        assert (web["action"], web["reason"]) == ("hold", reason)


def test_a_repository_that_cannot_be_told_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    file_remote: Remote,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default repository is the source's GitHub remote; a file:// remote names none."""
    extra = "  verify:\n    github: {}\n"
    site = make_site(
        tmp_path / "site", file_remote, registry, pusher, repo_name.replace("/", "-"), extra=extra
    )
    monkeypatch.chdir(site.root)
    site.push(site.main[-1], 1)
    code, _, err = run(capsys, "plan")
    assert code != 0
    assert err.strip().splitlines() == [
        f"error: {site.root / 'tagtrail.yaml'}: deploy.verify.github.repository: cannot tell the repository"
        " from the source repository's remote: set it (OWNER/REPO)"
    ]


def test_many_unattested_builds_are_each_refused_and_the_attested_one_deploys(
    capsys: pytest.CaptureFixture[str], site: Site, sigstore: LocalSigstore
) -> None:
    """Builds pushed while the attestation step failed (or before it was added): each is looked at and
    refused with its own reason, however many, and the newest attested build is still chosen."""
    good = site.push(site.main[-1], 20)
    attest(site, sigstore, good, main_run(site.main[-1]))
    unattested = [site.push(site.main[-1], 10 - n, content=f"build {n}".encode()) for n in range(8)]
    web = plan(capsys)
    assert (web["action"], web["target"]["tag"]) == ("deploy", good.tag)  # type: ignore[index]
    refused = [(r["tag"], r["reason"]) for r in web["refused"]]  # type: ignore[attr-defined]
    assert refused == [(b.tag, "not-attested") for b in reversed(unattested)]


def test_a_long_lived_reconciler_reads_a_build_s_bundles_once(site: Site, sigstore: LocalSigstore) -> None:
    """serve's reconciler: a build's bundles are read and verified once (proven, or refused for good), a
    build not attested yet is asked again until its attestation lands, and then deploys."""
    good = site.push(site.main[-1], 3)
    attest(site, sigstore, good, main_run(site.main[-1]))
    other = site.push(site.main[-1], 2, content=b"attested by another workflow")
    attest(site, sigstore, other, replace(main_run(site.main[-1]), workflow=".github/workflows/x.yml"))
    late = site.push(site.main[-1], 1, content=b"its attestation lands later")
    path = site.root / "tagtrail.yaml"

    async def plans() -> list[Planned]:
        async with Reconciler.open(load_config(path), path) as reconciler:
            first = await reconciler.plan(actor="test", record=False)
            second = await reconciler.plan(actor="test", record=False)
            attest(site, sigstore, late, main_run(site.main[-1]))
            third = await reconciler.plan(actor="test", record=False)
            fourth = await reconciler.plan(actor="test", record=False)
        return [*first, *second, *third, *fourth]

    first, second, third, fourth = asyncio.run(plans())
    assert (first.decision.target_tag, second.decision.target_tag) == (good.tag, good.tag)
    assert [(r.tag, r.code) for r in second.decision.refusals] == [
        (late.tag, "not-attested"),
        (other.tag, "attested-identity-mismatch"),
    ]
    # again: the tag list, a HEAD per candidate (has its tag moved?), and for the build not attested yet
    # the referrers API and the index tag; no bundle is read twice
    assert (first.requests, second.requests) == (1 + 3 * 2 + 4 + 4 + 2, 1 + 3 + 2)
    assert (third.decision.action, third.decision.target_tag) == ("deploy", late.tag)
    assert fourth.requests == 1 + 1  # the tag list and the winner's HEAD: its bundle was verified before
