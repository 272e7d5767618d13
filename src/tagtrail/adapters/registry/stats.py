"""Every request a client sends, counted per registry and status code (for the decision log and metrics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# A request that got no HTTP answer (connection refused, reset, timed out) is counted under this status.
NO_ANSWER = "error"

Listener = Callable[[str, str], None]
_SCOPE: ContextVar[list[int] | None] = ContextVar("tagtrail_request_scope", default=None)


@contextmanager
def counting() -> Iterator[list[int]]:
    """Count the requests made inside this block (and the asyncio tasks it starts): `box[0]`."""
    box = [0]
    token = _SCOPE.set(box)
    try:
        yield box
    finally:
        _SCOPE.reset(token)


class RequestStats:
    """Counts requests as (registry, status) pairs; listeners (e.g. a metrics exporter) see each one."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._listeners: list[Listener] = []

    def count(self, registry: str, status: int | str) -> None:
        key = (registry, str(status))
        self._counts[key] += 1
        scope = _SCOPE.get()
        if scope is not None:
            scope[0] += 1
        for listener in self._listeners:
            listener(*key)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def for_registry(self, registry: str) -> int:
        return sum(n for (host, _), n in self._counts.items() if host == registry)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{registry: {status: count}}, sorted, for JSON output."""
        out: dict[str, dict[str, int]] = {}
        for (host, status), n in sorted(self._counts.items()):
            out.setdefault(host, {})[status] = n
        return out
