"""The one way `tagtrail serve` runs a periodic task (the poll loop, scheduled prunes, the base-image watch,
the Lease's renewal), with one crash policy: a turn that raises anything (a TagtrailError its turn did not
handle, or a bug) is logged with its traceback, counted in /metrics (`tagtrail_task_failures_total`, by
task), and the task backs off (5 s, 10 s, … up to 5 minutes; a turn that works starts again at 5 s) and goes
on. Only cancelling, or `until`, ends a task: a bug in one turn never silently stops prunes or renewals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tagtrail.serve.controller.schedule import BACKOFF_FIRST
from tagtrail.serve.metrics import Metrics

log = logging.getLogger("tagtrail.controller")
BACKOFF_MAX = 300.0  # seconds: a task that keeps failing is tried again at least this often
IDLE = 60.0  # seconds: how often a scheduled task whose schedule is unset (or far off) looks again
Sleep = Callable[[float], Awaitable[None]]


async def every(
    task: str,
    turn: Callable[[], Awaitable[object]],
    metrics: Metrics,
    *,
    sleep: Sleep = asyncio.sleep,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Runs `turn` again and again (each turn waits for its own time) until cancelled or `until()`."""
    failures = 0
    while not until():
        try:
            await turn()
        except Exception:
            failures += 1
            delay = min(BACKOFF_FIRST * 2 ** (failures - 1), BACKOFF_MAX)
            log.exception("the %s task failed; trying again in %.0f s", task, delay)
            metrics.task_failures.labels(task).inc()
            await sleep(delay)
        else:
            failures = 0


async def scheduled(
    task: str,
    due: Callable[[], float | None],
    run: Callable[[], Awaitable[object]],
    metrics: Metrics,
    *,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """`every`, for a task run on a schedule read at each turn (a config reload may set, change or clear it):
    `due()` is the seconds until the next run, None while there is no schedule."""

    async def turn() -> None:
        wait = due()
        if wait is None or wait > 0:
            await sleep(IDLE if wait is None else min(wait, IDLE))
        else:
            await run()

    await every(task, turn, metrics, sleep=sleep)
