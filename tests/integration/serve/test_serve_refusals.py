"""`tagtrail serve` and a forged tag: pushed to the registry (which notifies serve), refused with its
reason, told once however often it is seen again, shown on the dashboard, never written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.git import Remote
from bench.homelab import SCHEME, Homelab
from bench.serve import WEBHOOK_TOKEN, Receiver, ServeProcess, remote_log, wait_for
from tagtrail_demo import ImagePusher, RegistryServer


def test_a_forged_tag_is_refused_told_once_and_shown(
    served: ServeProcess,
    lab: Homelab,
    notifying_registry: RegistryServer,
    file_remote: Remote,
    receiver: Receiver,
) -> None:
    before = remote_log(file_remote)
    forged = SCHEME.format(
        branch="main", sha="deadbee" + "0" * 33, time=datetime.now(UTC) - timedelta(minutes=1)
    )
    with ImagePusher(notifying_registry.url) as pusher:
        pusher.push_image(
            f"{lab.prefix}/gosonos", forged, labels={"org.opencontainers.image.revision": "d" * 40}
        )
    title = f"tagtrail refused {forged} for gosonos (commit-unknown)"
    wait_for(lambda: title in receiver.titles(), timeout=60, what="the refusal's notification")
    reconciles = served.metric("tagtrail_reconciles_total", result="ok")
    auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    for _ in range(2):  # seen again: not told again
        assert (
            served.post("/hooks/generic", json={"image": f"{lab.image}/gosonos"}, headers=auth).status_code
            == 202
        )
    wait_for(
        lambda: served.metric("tagtrail_reconciles_total", result="ok") >= reconciles + 1, what="a reconcile"
    )
    assert receiver.titles().count(title) == 1
    assert served.metric("tagtrail_refusals_total", app="gosonos", reason="commit-unknown") == 1
    assert remote_log(file_remote) == before  # never written
    index = served.get("/").text
    assert f"{forged}: commit-unknown" in index
    page = served.get("/apps/gosonos").text
    assert "Refused" in page
    assert "no commit deadbee" in page
