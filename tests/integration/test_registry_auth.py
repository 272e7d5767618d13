"""Authentication against real registries: htpasswd (basic) and distribution's `auth: token` (bearer)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path

import pytest

from bench.tokens import TokenIssuer
from bench.users import REGISTRY_USER
from tagtrail.adapters.registry import CredentialResolver, ImageRef, RegistryClient
from tagtrail.config import RegistryConfig
from tagtrail.errors import RegistryAuthError
from tagtrail_demo import ImagePusher, RegistryServer

pytestmark = pytest.mark.anyio
USER, PASSWORD = REGISTRY_USER


def client(
    server: RegistryServer, credentials: str = "docker", env: dict[str, str] | None = None
) -> RegistryClient:
    settings = {server.host: RegistryConfig(insecure=True, credentials=credentials)}
    resolver = CredentialResolver({server.host: credentials}, env=env) if env is not None else None
    return RegistryClient(settings, credentials=resolver, retries=0)


def docker_login(home: Path, host: str, user: str, password: str) -> None:
    (home / ".docker").mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


async def test_basic_auth_from_docker_config(
    auth_registry: RegistryServer, auth_pusher: ImagePusher, repo_name: str, isolated_home: Path
) -> None:
    auth_pusher.push_image(repo_name, "v1")
    docker_login(isolated_home, auth_registry.host, USER, PASSWORD)
    ref = ImageRef.parse(f"{auth_registry.host}/{repo_name}")
    async with client(auth_registry) as c:
        assert await c.list_tags(ref) == ["v1"]
        await c.head(ref.with_tag("v1"))
        # one 401 to learn the scheme, then basic auth goes with every request
        assert c.stats.snapshot() == {auth_registry.host: {"200": 2, "401": 1}}


async def test_basic_auth_from_env_and_from_a_pull_secret_file(
    auth_registry: RegistryServer, auth_pusher: ImagePusher, repo_name: str, tmp_path: Path
) -> None:
    auth_pusher.push_image(repo_name, "v1")
    ref = ImageRef.parse(f"{auth_registry.host}/{repo_name}")
    async with client(auth_registry, "env:REG", {"REG_USERNAME": USER, "REG_PASSWORD": PASSWORD}) as c:
        assert await c.list_tags(ref) == ["v1"]
    secret = tmp_path / ".dockerconfigjson"
    docker_login(tmp_path, auth_registry.host, USER, PASSWORD)
    (tmp_path / ".docker" / "config.json").rename(secret)
    async with client(auth_registry, f"file:{secret}") as c:
        assert await c.list_tags(ref) == ["v1"]


async def test_wrong_or_missing_basic_credentials_are_clear_and_secret_free(
    auth_registry: RegistryServer, auth_pusher: ImagePusher, repo_name: str, isolated_home: Path
) -> None:
    auth_pusher.push_image(repo_name, "v1")
    ref = ImageRef.parse(f"{auth_registry.host}/{repo_name}")
    async with client(auth_registry) as c:
        with pytest.raises(RegistryAuthError, match="needs credentials and none are configured"):
            await c.list_tags(ref)
    docker_login(isolated_home, auth_registry.host, USER, "not-the-password-xyz")
    async with client(auth_registry) as c:
        with pytest.raises(
            RegistryAuthError, match=f"refused the credentials of user '{USER}' from .*config.json"
        ) as caught:
            await c.list_tags(ref)
    assert "not-the-password-xyz" not in str(caught.value)
    assert "not-the-password-xyz" not in repr(caught.value)


async def test_bearer_token_flow(
    token_registry: RegistryServer, token_issuer: TokenIssuer, pusher: ImagePusher, repo_name: str
) -> None:
    image = pusher.push_image(
        repo_name, "v1"
    )  # pushed through the plain registry; the token one shares storage
    ref = ImageRef.parse(f"{token_registry.host}/{repo_name}")
    before = len(token_issuer.requests)
    async with client(token_registry, "env:T", {"T_USERNAME": USER, "T_PASSWORD": PASSWORD}) as c:
        assert await c.list_tags(ref) == ["v1"]
        assert (await c.head(ref.with_tag("v1"))).digest == image.digest
        assert (await c.manifest(ref.with_tag("v1"))).digest == image.digest
        # 401 challenge, token, list; then the cached token serves the HEAD and the GET
        assert c.stats.snapshot() == {token_registry.host: {"200": 4, "401": 1}}
    issued = token_issuer.requests[before:]
    assert issued == [{"method": "GET", "scope": f"repository:{repo_name}:pull", "account": USER}]


async def test_a_new_repository_gets_its_token_without_a_401(
    token_registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    pusher.push_image(f"{repo_name}-a", "v1")
    pusher.push_image(f"{repo_name}-b", "v1")
    async with client(token_registry, "env:T", {"T_USERNAME": USER, "T_PASSWORD": PASSWORD}) as c:
        await c.list_tags(ImageRef.parse(f"{token_registry.host}/{repo_name}-a"))
        await c.list_tags(ImageRef.parse(f"{token_registry.host}/{repo_name}-b"))
        assert c.stats.snapshot() == {token_registry.host: {"200": 4, "401": 1}}  # 2 tokens + 2 lists


async def test_a_token_for_the_wrong_scope_is_replaced_after_the_challenge(
    token_registry: RegistryServer, token_issuer: TokenIssuer, pusher: ImagePusher, repo_name: str
) -> None:
    pusher.push_image(f"{repo_name}-warm", "v1")
    pusher.push_image(repo_name, "v1")
    async with client(token_registry, "env:T", {"T_USERNAME": USER, "T_PASSWORD": PASSWORD}) as c:
        await c.list_tags(
            ImageRef.parse(f"{token_registry.host}/{repo_name}-warm")
        )  # the scheme is now known
        token_issuer.wrong_scope_next = 1  # the proactive token for the next repository names another one
        assert await c.list_tags(ImageRef.parse(f"{token_registry.host}/{repo_name}")) == ["v1"]
        # warm: 401 + token + list; then: wrong token → 401 → token for the challenged scope → list
        assert c.stats.snapshot() == {token_registry.host: {"200": 5, "401": 2}}


async def test_tokens_are_renewed_when_they_expire(
    token_registry: RegistryServer, token_issuer: TokenIssuer, pusher: ImagePusher, repo_name: str
) -> None:
    pusher.push_image(repo_name, "v1")
    ref = ImageRef.parse(f"{token_registry.host}/{repo_name}")
    token_issuer.lifetime = 2
    try:
        async with client(token_registry, "env:T", {"T_USERNAME": USER, "T_PASSWORD": PASSWORD}) as c:
            await c.list_tags(ref)
            before = len(token_issuer.requests)
            await c.list_tags(ref)
            assert len(token_issuer.requests) == before  # still valid: reused
            await asyncio.sleep(2.1)
            await c.list_tags(ref)
            assert len(token_issuer.requests) == before + 1  # expired: renewed before use, no 401
            assert c.stats.snapshot()[token_registry.host]["401"] == 1
    finally:
        token_issuer.lifetime = 300


async def test_bearer_refusals(
    token_registry: RegistryServer, pusher: ImagePusher, repo_name: str, isolated_home: Path
) -> None:
    pusher.push_image(repo_name, "v1")
    ref = ImageRef.parse(f"{token_registry.host}/{repo_name}")
    async with client(token_registry) as c:  # anonymous: the issuer grants nothing, the registry says 401
        with pytest.raises(RegistryAuthError, match="needs credentials and none are configured"):
            await c.list_tags(ref)
    async with client(token_registry, "env:T", {"T_USERNAME": USER, "T_PASSWORD": "wrong-pw-123"}) as c:
        with pytest.raises(
            RegistryAuthError, match=f"refused the credentials of user '{USER}' from env:T"
        ) as caught:
            await c.list_tags(ref)
    assert "wrong-pw-123" not in str(caught.value)


async def test_identity_token_refresh_grant(
    token_registry: RegistryServer,
    token_issuer: TokenIssuer,
    pusher: ImagePusher,
    repo_name: str,
    isolated_home: Path,
) -> None:
    pusher.push_image(repo_name, "v1")
    token_issuer.identity_tokens["refresh-abc"] = USER
    (isolated_home / ".docker").mkdir()
    (isolated_home / ".docker" / "config.json").write_text(
        json.dumps({"auths": {token_registry.host: {"identitytoken": "refresh-abc"}}})
    )
    before = len(token_issuer.requests)
    async with client(token_registry) as c:
        assert await c.list_tags(ImageRef.parse(f"{token_registry.host}/{repo_name}")) == ["v1"]
    assert token_issuer.requests[before:] == [
        {"method": "POST", "scope": f"repository:{repo_name}:pull", "account": ""}
    ]


async def test_delete_asks_for_the_delete_scope(
    token_registry: RegistryServer, token_issuer: TokenIssuer, pusher: ImagePusher, repo_name: str
) -> None:
    doomed = pusher.push_image(repo_name, "old")
    pusher.push_image(repo_name, "keep")
    ref = ImageRef.parse(f"{token_registry.host}/{repo_name}")
    async with client(token_registry, "env:T", {"T_USERNAME": USER, "T_PASSWORD": PASSWORD}) as c:
        await c.delete(ref.with_digest(doomed.digest))
        assert await c.list_tags(ref) == ["keep"]
    assert {
        "method": "GET",
        "scope": f"repository:{repo_name}:delete",
        "account": USER,
    } in token_issuer.requests


async def test_no_secret_reaches_the_logs(
    token_registry: RegistryServer,
    auth_registry: RegistryServer,
    pusher: ImagePusher,
    auth_pusher: ImagePusher,
    repo_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pusher.push_image(repo_name, "v1")
    auth_pusher.push_image(repo_name, "v1")
    env = {"T_USERNAME": USER, "T_PASSWORD": PASSWORD}
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, "httpx"),
        caplog.at_level(logging.DEBUG, "httpcore"),
    ):
        for server in (token_registry, auth_registry):
            async with client(server, "env:T", env) as c:
                await c.list_tags(ImageRef.parse(f"{server.host}/{repo_name}"))
                await c.head(ImageRef.parse(f"{server.host}/{repo_name}:v1"))
    assert caplog.records  # httpx and httpcore did log each request
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, "eyJ"):  # eyJ: how every JWT starts
        assert secret not in caplog.text
