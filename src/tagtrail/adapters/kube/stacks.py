"""The Pulumi Kubernetes Operator's Stack (stacks.pulumi.com), read and watched: what its last update says
(`status.lastUpdate`: state, the commits attempted and applied, the operator's message, the permalink).

`LastUpdate.of` is pure; `Stacks` reads one Stack and follows it with one watch until a judge decides, as a
rollout is followed (`cluster.py`). Every request goes through `refusals`, so a failure is one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from lightkube import ApiError
from lightkube.generic_resource import create_namespaced_resource

from tagtrail.adapters.kube.cluster import Cluster
from tagtrail.adapters.kube.connect import refusals
from tagtrail.config.appliedby import PulumiStackRef
from tagtrail.errors import KubeError

STACK = create_namespaced_resource("pulumi.com", "v1", "Stack", "stacks")
MESSAGE_CAP = 300  # the operator's message is a whole Pulumi error at times: its first line, bounded

T = TypeVar("T")


@dataclass(frozen=True)
class LastUpdate:
    """A Stack's `status.lastUpdate`; every field None where the operator has not written it yet."""

    state: str | None = None  # succeeded | failed (the operator's words)
    attempted: str | None = None  # lastAttemptedCommit
    applied: str | None = None  # lastSuccessfulCommit
    message: str = ""
    permalink: str | None = None
    failures: int = 0

    @classmethod
    def of(cls, body: dict[str, Any]) -> LastUpdate:
        status = body.get("status")
        last = status.get("lastUpdate") if isinstance(status, dict) else None
        if not isinstance(last, dict):
            return cls()
        failures = last.get("failures")
        return cls(
            _text(last.get("state")),
            _text(last.get("lastAttemptedCommit")),
            _text(last.get("lastSuccessfulCommit")),
            _one_line(last.get("message")),
            _link(last.get("permalink")),
            failures if isinstance(failures, int) else 0,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _link(value: object) -> str | None:
    """The update's page, only as a web address: the dashboard links it."""
    text = _text(value)
    return text if text is not None and text.startswith(("https://", "http://")) else None


def _one_line(value: object) -> str:
    if not isinstance(value, str):
        return ""
    first = next((line.strip() for line in value.splitlines() if line.strip()), "")
    return first if len(first) <= MESSAGE_CAP else first[: MESSAGE_CAP - 1] + "…"


class Stacks:
    """The Stacks of one cluster, through its one connection."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def get(self, stack: PulumiStackRef) -> tuple[LastUpdate, str | None]:
        """The Stack's last update and its resourceVersion; a Stack that is not there is an error."""
        client = self.cluster.connection()
        self.cluster.requests += 1
        try:
            async with refusals(self.cluster.server, f"get {_named(stack)}"):
                body = _body(await client.get(STACK, stack.name, namespace=stack.namespace))
        except ApiError as error:
            if error.status.code == 404:
                raise KubeError(
                    f"no Stack {stack.name} in namespace {stack.namespace} (stacks.pulumi.com): check"
                    " deploy.git.applied_by.pulumi_stack and that the Pulumi Kubernetes Operator is installed"
                ) from None
            raise KubeError(
                f"the Kubernetes API at {self.cluster.server} failed to get {_named(stack)}"
                f" ({error.status.code}): {error.status.message}"
            ) from None
        version = (body.get("metadata") or {}).get("resourceVersion")
        return LastUpdate.of(body), version

    async def follow(
        self, stack: PulumiStackRef, judge: Callable[[LastUpdate], Awaitable[T | None]], timeout: float
    ) -> tuple[T | None, LastUpdate]:
        """Watch the Stack until `judge` decides on its last update, or `timeout` seconds pass (None). What
        the Stack says now is judged first, however little time is left: a commit applied while nobody
        watched (serve restarted after the timeout) is applied, not missed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:  # a turn per watch: one ends at the server's timeout, or when the Stack is deleted
            last, version = await self.get(stack)
            if (decided := await judge(last)) is not None:
                return decided, last
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None, last
            try:
                async with asyncio.timeout(left):
                    async for update in self._watch(stack, version):
                        last = update
                        if (decided := await judge(last)) is not None:
                            return decided, last
            except TimeoutError:
                return None, last

    async def _watch(self, stack: PulumiStackRef, version: str | None) -> AsyncGenerator[LastUpdate]:
        self.cluster.requests += 1
        stream = self.cluster.connection().watch(
            STACK, namespace=stack.namespace, fields={"metadata.name": stack.name}, resource_version=version
        )
        # closed on leaving, not when collected: lightkube's generator holds the response open
        watching = aclosing(cast("AsyncGenerator[tuple[str, Any], None]", stream))
        async with refusals(self.cluster.server, f"watch {_named(stack)}"), watching as watch:
            async for kind, body in watch:
                if kind == "DELETED":
                    return
                yield LastUpdate.of(_body(body))


def _named(stack: PulumiStackRef) -> str:
    """The Stack as a Role names what it allows (stacks.pulumi.com), for a refusal to say which right."""
    return f"stacks.pulumi.com {stack.name} in {stack.namespace}"


def _body(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)
