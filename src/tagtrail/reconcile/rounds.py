"""Questions for git from apps decided at the same time, answered together (DESIGN invariant 13).

Every app of a reconcile is decided concurrently, and each asks git for facts now and then (are these
commits on the deploy branch, is this one an ancestor of what runs). A `Rounds` holds each question until
every app still deciding is either waiting on one or done, then answers all the questions of one kind with
one call of its answerer (a git process or two): the processes per reconcile grow with the rounds of
questions the policy needs (two or three), not with the apps or their candidates. An asker that is not one of
the expected apps (a rollback, a test) is answered at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Answerer = Callable[[list[Any]], Awaitable[Mapping[Any, Any]]]


class Rounds:
    def __init__(self) -> None:
        self._expected = 0  # askers that are still deciding
        self._waiting: list[tuple[Answerer, Sequence[Hashable], asyncio.Future[dict[Any, Any]]]] = []
        self._answering: asyncio.Task[None] | None = None

    def expect(self, askers: int) -> None:
        """`askers` more will ask or `leave`: hold questions until each of them does one or the other."""
        self._expected += askers

    def leave(self) -> None:
        """One expected asker is done: it asks no more."""
        self._expected -= 1
        self._answer_when_all_wait()

    async def ask(
        self, answerer: Callable[[list[K]], Awaitable[Mapping[K, V]]], questions: Sequence[K]
    ) -> dict[K, V]:
        """The answers to `questions`, from one call of `answerer` with every question of its kind asked in
        this round."""
        future: asyncio.Future[dict[Any, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((answerer, questions, future))
        self._answer_when_all_wait()
        return await future

    def _answer_when_all_wait(self) -> None:
        if self._waiting and self._answering is None and len(self._waiting) >= self._expected:
            self._answering = asyncio.ensure_future(self._answer())

    async def _answer(self) -> None:
        try:
            while self._waiting and len(self._waiting) >= self._expected:  # an answered app asks again
                batch, self._waiting = self._waiting, []
                kinds: dict[Answerer, list[Hashable]] = {}
                for answerer, questions, _ in batch:
                    kinds.setdefault(answerer, []).extend(questions)
                for answerer, questions in kinds.items():
                    mine = [(qs, f) for a, qs, f in batch if a == answerer]
                    try:
                        answers = await answerer(list(dict.fromkeys(questions)))
                    except Exception as exc:  # every asker of this kind hears it, as if it had asked alone
                        for _, future in mine:
                            if not future.done():  # its asker may have been cancelled
                                future.set_exception(exc)
                        continue
                    for asked, future in mine:
                        if not future.done():
                            future.set_result({q: answers[q] for q in asked})
        finally:
            self._answering = None
