"""Webhook payloads and their checks: what was pushed, and whether the sender may say so.

A webhook is only a hint: it names an image and maybe a tag, and the controller then reads the registry
again and lets the policy decide. So these functions extract as little as they can (repository, tag) and
never trust a digest, a time or an order from the payload.

- The CNCF distribution registry's notifications: an envelope of events; pushes of manifests with a tag.
- GitHub `package` and `registry_package` events, signed with X-Hub-Signature-256 (HMAC-SHA256 of the body).
- A generic `{"image": …, "tag": …}` JSON body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tagtrail.adapters.registry.media import INDEX_TYPES, MANIFEST_TYPES
from tagtrail.errors import TagtrailError

DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v1+json"
# a push of any image (a manifest or a multi-arch index) is worth a look; blobs and the like are not
PUSHED_TYPES = MANIFEST_TYPES | INDEX_TYPES
CLIENTS_KEPT = 10_000  # clients a RateLimiter remembers: the ones refused most recently


class HookError(TagtrailError):
    """A request the hook refuses: `status` is the HTTP status, the message says why (never the payload)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Push:
    """An image repository (registry host included when the payload says it) and the tag pushed."""

    image: str
    tag: str | None


# Pushes looked at per request: a notification is a hint (the periodic poll catches up on anything left
# out), so a body of thousands of events costs a bounded amount of work.
MAX_PUSHES = 100


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HookError(400, "the body is not JSON") from None
    except RecursionError:
        raise HookError(400, "the body's JSON is nested too deeply") from None


def distribution_pushes(body: bytes) -> list[Push]:
    """The tagged manifest pushes in a distribution notification envelope (blob pushes and pulls skipped)."""
    envelope = _json(body)
    events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(events, list):
        raise HookError(400, "not a registry notification: no 'events' list")
    pushes = []
    for event in events:
        if not isinstance(event, dict) or event.get("action") != "push":
            continue
        target = event.get("target")
        if not isinstance(target, dict):
            continue
        repository, tag = target.get("repository"), target.get("tag")
        if not isinstance(repository, str) or not isinstance(tag, str) or not tag:
            continue  # a blob, or a manifest pushed by digest (an index's children): no new tag
        if not isinstance(target.get("mediaType"), str) or target["mediaType"] not in PUSHED_TYPES:
            continue
        request = event.get("request")
        host = request.get("host") if isinstance(request, dict) else None
        image = f"{host}/{repository}" if isinstance(host, str) and host else repository
        push = Push(image, tag)
        if push not in pushes:
            pushes.append(push)
        if len(pushes) >= MAX_PUSHES:
            break
    return pushes


def github_pushes(event: str, body: bytes) -> list[Push]:
    """The container published in a GitHub `package` or `registry_package` event."""
    payload = _json(body)
    if event == "ping":
        return []
    if event not in ("package", "registry_package"):
        raise HookError(
            400, f"GitHub event '{event or '(none)'}' is not a package event; subscribe to Packages only"
        )
    if not isinstance(payload, dict) or payload.get("action") not in ("published", "updated"):
        return []
    package = payload.get(event)
    if not isinstance(package, dict):
        raise HookError(400, f"a {event} event without its '{event}' object")
    if str(package.get("package_type", "")).lower() != "container":
        return []
    found = package.get("package_version")
    version: dict[str, Any] = found if isinstance(found, dict) else {}
    url = version.get("package_url")
    if isinstance(url, str) and "/" in url:
        ref = url.split("@", 1)[0]  # ghcr.io/owner/name:tag, or …:  or …@sha256:… when untagged
        image, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
        return [Push(image.lower(), tag or _github_tag(version))]
    account = package.get("owner")
    owner = package.get("namespace") or (account.get("login") if isinstance(account, dict) else None)
    name = package.get("name")
    if not isinstance(owner, str) or not isinstance(name, str):
        raise HookError(400, f"a {event} event that names no package")
    return [Push(f"ghcr.io/{owner}/{name}".lower(), _github_tag(version))]


def _github_tag(version: dict[str, Any]) -> str | None:
    metadata = version.get("container_metadata")
    tag = metadata.get("tag") if isinstance(metadata, dict) else None
    name = tag.get("name") if isinstance(tag, dict) else None
    return name if isinstance(name, str) and name else None


def generic_push(body: bytes) -> Push:
    payload = _json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("image"), str) or not payload["image"]:
        raise HookError(400, 'the body must be {"image": "registry/repository", "tag": "…"}')
    tag = payload.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise HookError(400, "'tag' must be a string")
    image: str = payload["image"]
    if ":" in image.rsplit("/", 1)[-1] and tag is None:
        image, _, tag = image.rpartition(":")
    return Push(image, tag or None)


def github_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256: `sha256=` and the hex HMAC-SHA256 of the raw body, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def secret_ok(expected: str, given: str | None) -> bool:
    """A shared secret or token, compared in constant time."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


class ReplayGuard:
    """Remembers delivery ids (GitHub's X-GitHub-Delivery) for a while, so a captured request sent again is
    refused even though its signature is right."""

    def __init__(
        self, keep: int = 10_000, ttl: float = 24 * 3600, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._keep, self._ttl, self._clock = keep, ttl, clock

    def first_time(self, delivery: str) -> bool:
        now = self._clock()
        while self._seen and (
            len(self._seen) >= self._keep or next(iter(self._seen.values())) < now - self._ttl
        ):
            self._seen.popitem(last=False)
        if delivery in self._seen:
            return False
        self._seen[delivery] = now
        return True


class RateLimiter:
    """A token bucket per client, charged by refused requests only: a registry pushing a burst of valid
    notifications is never slowed, while a client sending bad signatures or garbage runs out of tokens
    (`rate` a second, bursts of `burst`) and then gets 429 for everything until the bucket refills."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2 * rate)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _refilled(self, bucket: tuple[float, float], now: float) -> float:
        tokens, then = bucket
        return min(self.burst, tokens + (now - then) * self.rate)

    def _tokens(self, source: str) -> float:
        now = self._clock()
        tokens = self._refilled(self._buckets.pop(source, (self.burst, now)), now)
        if tokens < self.burst:  # a full bucket is no bucket: nothing is kept for a client not refused
            self._buckets[source] = (tokens, now)  # last, so the dict runs from least to most recent
        return tokens

    def __len__(self) -> int:
        return len(self._buckets)

    def blocked(self, source: str) -> bool:
        return self._tokens(source) < 1

    def wait(self, source: str) -> float:
        """Seconds until `source` may be refused once more without 429 (0: now)."""
        return max(0.0, (1 - self._tokens(source)) / self.rate)

    def charge(self, source: str) -> None:
        tokens = self._tokens(source)
        self._buckets[source] = (tokens - 1, self._clock())
        if len(self._buckets) > CLIENTS_KEPT:
            # Forget the clients that have refilled since, then the least recent down to half (so this runs
            # once per CLIENTS_KEPT / 2 refusals): one sender of many addresses cannot grow memory, and it
            # gains nothing it could not by using a new address.
            now = self._clock()
            kept = [(k, v) for k, v in self._buckets.items() if self._refilled(v, now) < self.burst]
            self._buckets = dict(kept[-(CLIENTS_KEPT // 2) :])
