"""`tagtrail serve` tells the first refusal of each candidate, never again for the same one; the
dashboard's row shows the refusals (fakes: no git here, so the revision label must start with the tag's sha)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes import FakeRegistry, FakeTarget, build, digest_of
from test_controller_parts import Clock, Sent, _controller

from tagtrail.domain.policy import Reason, Running
from tagtrail.serve.controller import Controller
from tagtrail.serve.web.views import row


def test_a_refused_candidate_is_told_once_and_shown(tmp_path: Path) -> None:
    old, forged = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")
    target = FakeTarget({"web": Running(old, digest_of(old))})
    registry = FakeRegistry({"acme/web": [old, forged]})
    registry.labels[forged] = {"org.opencontainers.image.revision": "d" * 40}

    async def go() -> Controller:
        controller = _controller(tmp_path, target, registry, Clock())
        for _ in range(3):
            await controller.reconcile()
        await controller.client.aclose()
        return controller

    controller = asyncio.run(go())
    assert target.running["web"] == Running(old, digest_of(old))  # never written
    notifier = controller.notifier
    assert isinstance(notifier, Sent)
    [told] = notifier.sent
    assert told.title == f"tagtrail refused {forged} for web (revision-mismatch)"
    assert "the image says it was built from dddddddd" in told.body
    assert told.kind == "warning"
    # the registry is read for the label once: the answer is remembered by digest
    assert registry.requests.count(("config", "acme/web")) == 1
    planned = controller.status.planned["web"]
    assert planned.decision.reason == Reason.REVISION_MISMATCH
    shown = row(planned, controller.config.tag_scheme, None, None, None, None)
    assert shown.refused == (f"{forged}: revision-mismatch",)
    assert shown.state == "error"
