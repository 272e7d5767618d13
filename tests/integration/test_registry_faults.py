"""Robustness: a fault-injecting proxy between the client and the real registry.

Every fault ends in one of two ways: the client recovers and returns the complete, correct answer, or it
raises a RegistryError naming the registry, the repository and what was wrong. Never a partial list.
"""

from __future__ import annotations

import time

import pytest

from bench.faultproxy import Fault, FaultProxy
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.adapters.registry import client as client_module
from tagtrail.config import RegistryConfig
from tagtrail.errors import RegistryError
from tagtrail_demo import ImagePusher

pytestmark = pytest.mark.anyio
TAGS = [f"main.2025101{d}-0510{s:02d}.185c95c" for d in range(5) for s in range(5)]


def via(proxy: FaultProxy, retries: int = 3, **settings: object) -> RegistryClient:
    config = RegistryConfig(insecure=True, **settings)  # type: ignore[arg-type]
    return RegistryClient({proxy.host: config}, retries=retries, backoff=0.01)


@pytest.fixture
def repo(pusher: ImagePusher, repo_name: str) -> str:
    image = pusher.push_image(repo_name, TAGS[0])
    for tag in TAGS[1:]:
        pusher.tag(image, tag)
    return repo_name


def ref(proxy: FaultProxy, repo: str) -> ImageRef:
    return ImageRef.parse(f"{proxy.host}/{repo}")


async def test_a_burst_of_5xx_is_retried(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("status", r"/tags/list", times=2, status=503))
    async with via(fault_proxy) as client:
        assert sorted(await client.list_tags(ref(fault_proxy, repo))) == sorted(TAGS)
        assert client.stats.snapshot() == {fault_proxy.host: {"200": 1, "503": 2}}


async def test_5xx_that_persists_is_a_transient_error(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("status", r"/tags/list", status=502))
    async with via(fault_proxy, retries=2) as client:
        with pytest.raises(
            RegistryError, match=rf"{fault_proxy.host}/{repo}: GET .* failed 3 times \(HTTP 502\)"
        ) as caught:
            await client.list_tags(ref(fault_proxy, repo))
    assert caught.value.transient


async def test_429_waits_for_retry_after(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("retry_after", r"/tags/list", times=1, seconds=1))
    async with via(fault_proxy) as client:
        started = time.monotonic()
        assert len(await client.list_tags(ref(fault_proxy, repo))) == len(TAGS)
        assert time.monotonic() - started >= 0.95  # it waited as told, not its own short backoff
        assert client.stats.snapshot() == {fault_proxy.host: {"200": 1, "429": 1}}


async def test_429_longer_than_we_wait_is_an_error(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("retry_after", r"/tags/list", seconds=3600))
    async with via(fault_proxy) as client:
        with pytest.raises(RegistryError, match="rate limiting us for 3600 s"):
            await client.list_tags(ref(fault_proxy, repo))


async def test_a_stall_times_out(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("stall", r"/tags/list", seconds=3))
    async with via(fault_proxy, retries=1, timeout=0.5) as client:
        with pytest.raises(RegistryError, match=r"failed 2 times \(no answer within 0.5 s\)"):
            await client.list_tags(ref(fault_proxy, repo))


async def test_a_stall_once_recovers(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("stall", r"/tags/list", times=1, seconds=2))
    async with via(fault_proxy, timeout=0.5) as client:
        assert len(await client.list_tags(ref(fault_proxy, repo))) == len(TAGS)


async def test_a_truncated_body_is_retried_then_refused(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("truncate", r"/tags/list", times=1))
    async with via(fault_proxy) as client:
        assert len(await client.list_tags(ref(fault_proxy, repo))) == len(TAGS)
    fault_proxy.add(Fault("truncate", r"/tags/list"))
    async with via(fault_proxy, retries=1) as client:
        with pytest.raises(RegistryError, match="truncated"):
            await client.list_tags(ref(fault_proxy, repo))


@pytest.mark.parametrize(
    ("kind", "message"),
    [("malformed", "not valid JSON"), ("content_type", "as 'text/html', not JSON")],
)
async def test_a_malformed_tag_list_is_an_error(
    fault_proxy: FaultProxy, repo: str, kind: str, message: str
) -> None:
    fault_proxy.add(Fault(kind, r"/tags/list"))  # type: ignore[arg-type]
    async with via(fault_proxy) as client:
        with pytest.raises(RegistryError, match=message) as caught:
            await client.list_tags(ref(fault_proxy, repo))
    assert f"{fault_proxy.host}/{repo}" in str(caught.value)


async def test_a_manifest_that_is_not_what_it_claims_is_an_error(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("malformed", r"/manifests/"))
    async with via(fault_proxy) as client:
        with pytest.raises(RegistryError, match="does not match the registry's Docker-Content-Digest"):
            await client.manifest(ref(fault_proxy, repo).with_tag(TAGS[0]))


async def test_an_answer_over_the_size_cap_is_refused(
    fault_proxy: FaultProxy, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "TAGS_PAGE_CAP", 64 * 1024)
    fault_proxy.add(Fault("huge", r"/tags/list"))
    async with via(fault_proxy) as client:
        with pytest.raises(RegistryError, match="answered more than 64 KiB"):
            await client.list_tags(ref(fault_proxy, repo))


async def test_pagination_is_followed_to_the_end(fault_proxy: FaultProxy, repo: str) -> None:
    fault_proxy.add(Fault("paginate", r"/tags/list", page=7))
    async with via(fault_proxy, page_size=7) as client:
        tags = await client.list_tags(ref(fault_proxy, repo))
        assert tags == sorted(TAGS)
        assert client.stats.total == 4  # ceil(25 / 7) pages
    assert fault_proxy.requests[0][1].endswith("/tags/list?n=7")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("loop", "leads back to a page already read"),
        ("repeat", "same page of tags twice"),
        ("shift", "changed shape while it was read"),
    ],
)
async def test_a_broken_pagination_is_an_error_not_a_partial_list(
    fault_proxy: FaultProxy, repo: str, mode: str, message: str
) -> None:
    fault_proxy.add(Fault("paginate", r"/tags/list", page=10, mode=mode))  # type: ignore[arg-type]
    async with via(fault_proxy, page_size=10) as client:
        with pytest.raises(RegistryError, match=message):
            await client.list_tags(ref(fault_proxy, repo))


async def test_concurrency_is_limited_per_registry(fault_proxy: FaultProxy, repo: str) -> None:
    import asyncio

    fault_proxy.add(Fault("stall", r"/manifests/", seconds=0.2))
    async with via(fault_proxy, concurrency=3) as client:
        base = ref(fault_proxy, repo)
        await asyncio.gather(*(client.head(base.with_tag(tag)) for tag in TAGS[:12]))
    assert fault_proxy.max_in_flight == 3


async def test_time_waiting_for_a_turn_is_not_a_timeout(fault_proxy: FaultProxy, repo: str) -> None:
    """Many reads queued behind the concurrency limit (prune HEADs every tag of every repository at once):
    each read's timeout starts when it may go, so a long queue is slow, never 'no answer'."""
    import asyncio

    fault_proxy.add(Fault("stall", r"/manifests/", seconds=0.3))
    async with via(fault_proxy, retries=0, concurrency=1, timeout=1.0) as client:
        base = ref(fault_proxy, repo)
        started = time.monotonic()
        found = await asyncio.gather(*(client.head(base.with_tag(tag)) for tag in TAGS[:8]))
    assert len(found) == 8  # the last waited about 2.1 s for its turn, over twice the timeout
    assert time.monotonic() - started >= 8 * 0.3
    assert fault_proxy.max_in_flight == 1


async def test_requests_per_second_are_paced(fault_proxy: FaultProxy, repo: str) -> None:
    import asyncio

    async with via(fault_proxy, rps=20) as client:
        base = ref(fault_proxy, repo)
        started = time.monotonic()
        await asyncio.gather(*(client.head(base.with_tag(tag)) for tag in TAGS[:11]))
        # 11 starts at 20 per second take at least 10 intervals of 50 ms (a lower bound: noise only adds)
        assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize("lie", ["another build", "no such digest"])
async def test_a_head_that_answers_another_digest_is_never_pinned(
    fault_proxy: FaultProxy, pusher: ImagePusher, repo_name: str, lie: str
) -> None:
    """A proxy or a broken registry claims another Docker-Content-Digest for the tag: the digest tagtrail
    would pin is read back by digest from the same repository and its bytes hashed, so the lie is caught."""
    from tagtrail.errors import RegistryNotFound
    from tagtrail.reconcile.observe import Observer

    wanted = pusher.push_image(repo_name, TAGS[0])
    other = pusher.push_image(f"{repo_name}-elsewhere", TAGS[1])  # a real digest, of another repository
    claimed = other.digest if lie == "another build" else "sha256:" + "e" * 64
    fault_proxy.add(Fault("digest", r"/manifests/main\.", value=claimed))
    async with via(fault_proxy, retries=0) as client:
        observer = Observer(client, None)
        told = await observer.digest(ref(fault_proxy, repo_name), TAGS[0])
        assert told == claimed  # what the HEAD said: enough to decide, never to write
        with pytest.raises(RegistryNotFound, match=claimed[:19]):
            await observer.prove(ref(fault_proxy, repo_name), told)  # as a deploy does before writing
    fault_proxy.faults.clear()
    async with via(fault_proxy, retries=0) as client:
        observer = Observer(client, None)
        digest = await observer.digest(ref(fault_proxy, repo_name), TAGS[0])
        await observer.prove(ref(fault_proxy, repo_name), digest)
        assert digest == wanted.digest
