"""The deploy commit's trailers: what tagtrail writes is what history and insights read back, byte for byte
as earlier versions wrote it (old deploy commits stay readable)."""

from __future__ import annotations

from tagtrail.adapters import trailers
from tagtrail.adapters.refs import Image
from tagtrail.adapters.trailers import Trailers
from tagtrail.targets.base import Change, ImageChange
from tagtrail.targets.message import commit_message

DIGEST = "sha256:" + "2" * 64
WEB = Image("ghcr.io/acme/homelab/web", "main.20251014-051038.185c95c", DIGEST)
API = Image("ghcr.io/acme/homelab/api", "main.20251014-051038.185c95c", DIGEST)


def test_a_deploy_commit_says_from_to_commit_reason_and_actor_per_app() -> None:
    change = Change(
        "deploy",
        "tagtrail serve",
        (
            ImageChange("web", WEB, "newer-build", "newer", "185c95c" + "0" * 33),
            ImageChange("api", API, "running-unknown", "unknown"),
        ),
    )
    message = commit_message(change, ["web", "api"], {"web": "ghcr.io/acme/homelab/web:old"})
    assert message.endswith(
        "\n\nTagtrail-App: web\nTagtrail-From: ghcr.io/acme/homelab/web:old\n"
        f"Tagtrail-To: {WEB.reference}\nTagtrail-Commit: 185c95c{'0' * 33}\nTagtrail-Reason: newer-build\n"
        "Tagtrail-Actor: tagtrail serve\n"
        f"Tagtrail-App: api\nTagtrail-From: none\nTagtrail-To: {API.reference}\nTagtrail-Commit: ?\n"
        "Tagtrail-Reason: running-unknown\nTagtrail-Actor: tagtrail serve\n"
    )
    assert trailers.parse(message) == [
        Trailers(
            "web",
            "newer-build",
            "tagtrail serve",
            "ghcr.io/acme/homelab/web:old",
            WEB.reference,
            "185c95c" + "0" * 33,
        ),
        Trailers("api", "running-unknown", "tagtrail serve", None, API.reference, None),
    ]


def test_a_pin_says_only_its_reason_and_actor() -> None:
    message = commit_message(Change("pin", "sam", pins={"web": "v1", "api": None}), [], {})
    assert message == (
        "pin: api, web\n\nAutomatic deploys of api resume.\nweb: pinned at v1\n\n"
        "Tagtrail-App: api\nTagtrail-Reason: pin\nTagtrail-Actor: sam\n"
        "Tagtrail-App: web\nTagtrail-Reason: pin\nTagtrail-Actor: sam\n"
    )
    assert trailers.parse(message) == [Trailers("api", "pin", "sam"), Trailers("web", "pin", "sam")]


def test_a_persons_commit_states_nothing_and_lines_before_the_first_app_are_ignored() -> None:
    assert trailers.parse("fix the readme\n\nSigned-off-by: sam\n") == []
    assert trailers.groups("x\n\nTagtrail-Reason: pin\nTagtrail-App: web\nTagtrail-Actor: sam \n") == [
        {"Tagtrail-App": "web", "Tagtrail-Actor": "sam"}
    ]
