"""Read ahead (`reconcile/ahead.py`): while git answers the policy's commit and ancestry questions, the image
read the policy will ask for next, if git answers as it does for a good build, is started; the policy's own
question finds it read, once. The registry here is a stand-in (fast logic); the real registry and git answer
the same path in tests/integration/test_one_app_push.py and test_provenance.py, whose request counts hold."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from test_provenance_policy import MAIN, MID, NEW, NOW, OLD, SCHEME, digest_of, full

from tagtrail.adapters.registry import ImageRef, Revision
from tagtrail.domain.policy import Facts, NeedAncestry, Running, decide
from tagtrail.domain.provenance import Claims, CommitAnswer, CommitState, NeedCommit, NeedRevision
from tagtrail.domain.scheme import rank
from tagtrail.errors import RegistryError
from tagtrail.reconcile.ahead import ahead
from tagtrail.reconcile.claims import Memory, Provenance

RUNNING = Running(OLD, digest_of(OLD))
TAGS = [OLD, MID, NEW]


def facts(claims: Claims | None = None, digests: dict[str, str] | None = None) -> Facts:
    return Facts(
        rank(SCHEME, TAGS, ("main",)),
        NOW,
        ancestry={},
        total_tags=len(TAGS),
        claims=claims or Claims(commits={}, revisions={}),
        digests=digests or {},
    )


def asked(first: Facts) -> NeedCommit | NeedAncestry:
    need = decide("web", SCHEME, MAIN, RUNNING, first)
    assert isinstance(need, NeedCommit | NeedAncestry), need
    return need


def test_while_git_is_asked_about_the_newest_build_its_image_read_is_started() -> None:
    first = facts()
    need = asked(first)
    assert isinstance(need, NeedCommit)  # every newer candidate's commit, at once
    assert ahead("web", SCHEME, MAIN, RUNNING, first, need) == NeedRevision(NEW, None)


def test_a_build_git_refused_already_is_passed_over_as_the_policy_would() -> None:
    refused = CommitAnswer(CommitState.OTHER_BRANCH, full("ccccccc"), "origin/main")
    first = facts(Claims(commits={NEW.rsplit(".", 1)[1]: refused}, revisions={}))
    need = asked(first)
    assert ahead("web", SCHEME, MAIN, RUNNING, first, need) == NeedRevision(MID, None)


def test_nothing_is_read_ahead_where_the_image_is_known_or_not_checked() -> None:
    known = facts(
        Claims(commits={}, revisions={digest_of(NEW): full("ccccccc")}), digests={NEW: digest_of(NEW)}
    )
    assert ahead("web", SCHEME, MAIN, RUNNING, known, asked(known)) is None
    unchecked = facts(Claims(commits={}, revisions=None))
    assert ahead("web", SCHEME, MAIN, RUNNING, unchecked, asked(unchecked)) is None


class Registry:
    """Counts image reads; `broken` ones fail as a registry that cannot be read does."""

    def __init__(self, broken: bool = False) -> None:
        self.reads: list[str] = []
        self.broken = broken

    async def revision(self, ref: ImageRef) -> Revision:
        self.reads.append(str(ref))
        await asyncio.sleep(0.01)
        if self.broken:
            raise RegistryError(ref.registry, ref.repository, "503 Service Unavailable")
        return Revision(digest_of(ref.tag or ""), full("ccccccc"), "label")


REF = ImageRef.parse("ghcr.io/acme/web")


def test_the_policy_s_own_question_finds_the_read_started_ahead() -> None:
    registry = Registry()

    async def scenario() -> tuple[str, str | None]:
        provenance = Provenance(cast(Any, registry), None, Memory())
        provenance.read_ahead(REF, NEW, None)
        provenance.read_ahead(REF, NEW, None)  # asked ahead twice: still one read
        await asyncio.sleep(0.05)  # git answering meanwhile
        assert len(registry.reads) == 1  # read before the policy asked
        answer = await provenance.revision(REF, NEW, None)
        await provenance.settle()
        assert (REF.name, digest_of(NEW)) in provenance.read  # read in this reconcile: its bytes hashed
        return answer

    assert asyncio.run(scenario()) == (digest_of(NEW), full("ccccccc"))
    assert registry.reads == [f"ghcr.io/acme/web:{NEW}"]


def test_a_failed_read_ahead_is_raised_to_who_asks_and_lost_quietly_if_nobody_does() -> None:
    registry = Registry(broken=True)
    lost: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: lost.append(context))
        provenance = Provenance(cast(Any, registry), None, Memory())
        provenance.read_ahead(REF, NEW, None)
        with pytest.raises(RegistryError, match="503"):
            await provenance.revision(REF, NEW, None)
        unasked = Provenance(cast(Any, registry), None, Memory())
        unasked.read_ahead(REF, MID, None)  # git refused MID after all: nobody asks
        await asyncio.sleep(0.05)
        await unasked.settle()
        pending = Provenance(cast(Any, registry), None, Memory())
        pending.read_ahead(REF, OLD, None)
        await pending.settle()  # still in flight when the reconcile ends: cancelled

    asyncio.run(scenario())
    assert lost == []
    assert len(registry.reads) == 2  # the read still pending was let go before it asked
