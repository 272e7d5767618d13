"""Signed images only (deploy.verify.keys), with signatures made independently of tagtrail's code: keys
and ECDSA P-256 signatures by the openssl CLI, laid out as cosign lays them out, pushed through the
registry's API. `tagtrail verify` says what it checked and why it passed or failed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from test_provenance import Site, make_site

from bench.cli import run
from bench.cosign import Key, openssl_key, openssl_sign, payload, push_signatures, sign
from bench.git import Remote
from tagtrail.config import load_config
from tagtrail.reconcile import Planned, Reconciler
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Key]:
    return {name: openssl_key(tmp_path / "keys", name) for name in ("trusted", "other")}


@pytest.fixture
def site(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    file_remote: Remote,
    keys: dict[str, Key],
    monkeypatch: pytest.MonkeyPatch,
) -> Site:
    extra = f"  verify:\n    keys: ['file:{keys['trusted'].public}']\n"
    made = make_site(
        tmp_path / "site", file_remote, registry, pusher, repo_name.replace("/", "-"), extra=extra
    )
    monkeypatch.chdir(made.root)
    return made


def signed(site: Site, key: Key, image: PushedImage) -> str:
    return sign(site.pusher, key, site.registry.host, site.repository, image.digest)


def test_a_signed_build_deploys_and_an_unsigned_newer_one_is_refused(
    capsys: pytest.CaptureFixture[str], site: Site, keys: dict[str, Key]
) -> None:
    good = site.push(site.main[0], 5)
    signed(site, keys["trusted"], good)
    unsigned = site.push(site.main[-1], 1)
    code, out, err = run(capsys, "plan", "--json")
    assert code == 0, err
    [web] = json.loads(out)
    assert (web["action"], web["target"]["tag"]) == ("deploy", good.tag)
    assert [(r["tag"], r["reason"]) for r in web["refused"]] == [(unsigned.tag, "unsigned")]
    assert run(capsys, "deploy")[0] == 0
    assert f"web:{good.tag}@{good.digest}" in site.deployed()


def test_a_tag_re_pointed_to_another_digest_after_signing_is_refused(
    capsys: pytest.CaptureFixture[str], site: Site, keys: dict[str, Key]
) -> None:
    build = site.push(site.main[-1], 2)
    signed(site, keys["trusted"], build)
    moved = site.pusher.push_image(site.repository, build.tag, labels={}, content=b"swapped after signing")
    assert moved.digest != build.digest
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["changed"] == []
    [web] = result["apps"]
    assert (web["action"], web["reason"]) == ("hold", "unsigned")
    assert "bootstrap" in site.deployed()


def verify(capsys: pytest.CaptureFixture[str], site: Site, image: PushedImage) -> tuple[int, str]:
    code, out, err = run(capsys, "verify", f"{site.image}:{image.tag}")
    return code, out + err


def test_verify_a_valid_signature(
    capsys: pytest.CaptureFixture[str], site: Site, keys: dict[str, Key]
) -> None:
    build = site.push(site.main[-1], 2)
    signed(site, keys["trusted"], build)
    code, out = verify(capsys, site, build)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[1] == f"digest  {build.digest}"
    assert f"ok      commit: {site.main[-1]} is on origin/main" in lines
    assert f"ok      revision label: {site.main[-1]} is {site.main[-1]}" in lines
    assert "ok      looked: referrers API: not offered by this registry" in lines
    assert any(
        line.startswith("ok      signature: tag sha256-") and line.endswith("layer 0: valid")
        for line in lines
    )


def _bad(site: Site, keys: dict[str, Key], build: PushedImage, case: str) -> list[tuple[bytes, str]]:
    reference = f"{site.registry.host}/{site.repository}"
    body = payload(build.digest, reference)
    if case == "wrong key":
        return [(body, openssl_sign(keys["other"], body))]
    if case == "payload for another digest":
        other = payload("sha256:" + "0" * 64, reference)
        return [(other, openssl_sign(keys["trusted"], other))]
    if case == "payload for another repository":
        other = payload(build.digest, f"{site.registry.host}/someone/else")
        return [(other, openssl_sign(keys["trusted"], other))]
    assert case == "tampered payload"
    tampered = body.replace(b'"optional":null', b'"optional":{"by":"attacker"}')
    return [(tampered, openssl_sign(keys["trusted"], body))]


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("wrong key", "no trusted key made this signature"),
        ("payload for another digest", "the payload is for sha256:000000000000…"),
        ("payload for another repository", "someone/else"),
        ("tampered payload", "(or the payload was changed)"),
    ],
)
def test_verify_refuses_a_bad_signature(
    capsys: pytest.CaptureFixture[str], site: Site, keys: dict[str, Key], case: str, why: str
) -> None:
    build = site.push(site.main[-1], 2)
    push_signatures(site.pusher, site.repository, build.digest, _bad(site, keys, build, case))
    code, out = verify(capsys, site, build)
    assert code == 1, out
    [failed] = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failed.startswith("FAIL    signature: no valid signature (tag sha256-")
    assert why in failed
    # and a deploy refuses it the same way
    code, deploy_out, _ = run(capsys, "deploy", "--json")
    [web] = json.loads(deploy_out)["apps"]
    assert (web["action"], web["reason"]) == ("hold", "signature-invalid")


def test_several_signatures_of_which_one_is_valid(
    capsys: pytest.CaptureFixture[str], site: Site, keys: dict[str, Key]
) -> None:
    build = site.push(site.main[-1], 2)
    body = payload(build.digest, f"{site.registry.host}/{site.repository}")
    layers = [
        *_bad(site, keys, build, "wrong key"),
        *_bad(site, keys, build, "payload for another digest"),
        (body, openssl_sign(keys["trusted"], body)),
    ]
    push_signatures(site.pusher, site.repository, build.digest, layers)
    code, out = verify(capsys, site, build)
    assert code == 0, out
    signatures = [line[:4].strip() for line in out.splitlines() if line[8:].startswith("signature:")]
    assert sorted(signatures) == ["--", "--", "ok"]  # the bad ones set aside, not failed
    assert run(capsys, "deploy")[0] == 0
    assert f"web:{build.tag}@{build.digest}" in site.deployed()


def test_a_signature_left_behind_by_a_deleted_image_signs_nothing(
    capsys: pytest.CaptureFixture[str], site: Site, keys: dict[str, Key]
) -> None:
    old = site.push(site.main[-1], 2)
    signed(site, keys["trusted"], old)
    deleted = httpx.delete(f"{site.registry.url}/v2/{site.repository}/manifests/{old.digest}")
    assert deleted.status_code == 202
    code, _, err = run(capsys, "verify", f"{site.image}@{old.digest}")
    assert code == 1
    assert "not found" in err
    # the same tag pushed again (another digest): the orphaned signature does not cover it
    again = site.pusher.push_image(site.repository, old.tag, content=b"pushed after the delete")
    code, out = verify(capsys, site, again)
    assert code == 1
    assert f"FAIL    signature: no signature for {again.digest[:19]}… was found" in out.splitlines()


def test_verify_with_a_key_given_on_the_command_line(
    capsys: pytest.CaptureFixture[str], site: Site, keys: dict[str, Key]
) -> None:
    build = site.push(site.main[-1], 2)
    signed(site, keys["other"], build)
    code, _, _ = run(capsys, "verify", f"{site.image}:{build.tag}")
    assert code == 1
    code, out, _ = run(
        capsys, "verify", "--key", str(keys["other"].public), f"{site.image}:{build.tag}", "--json"
    )
    assert code == 0
    assert json.loads(out)["passed"] is True


def test_a_key_file_replaced_drops_what_its_old_key_verified(site: Site, keys: dict[str, Key]) -> None:
    """A long-lived reconciler (tagtrail serve's) remembers valid signatures; a key file whose content is
    replaced (a key revoked) must not keep vouching for digests the old key signed."""
    build = site.push(site.main[-1], 2)
    signed(site, keys["trusted"], build)
    path = site.root / "tagtrail.yaml"

    async def plan_twice() -> tuple[Planned, Planned]:
        async with Reconciler.open(load_config(path), path) as reconciler:
            [first] = await reconciler.plan(actor="test", record=False)
            Path(keys["trusted"].public).write_bytes(Path(keys["other"].public).read_bytes())
            [second] = await reconciler.plan(actor="test", record=False)
        return first, second

    first, second = asyncio.run(plan_twice())
    assert (first.decision.action, first.decision.target_tag) == ("deploy", build.tag)
    assert (second.decision.action, second.decision.reason) == ("hold", "signature-invalid")
