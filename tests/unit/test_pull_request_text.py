"""What a person reads in tagtrail's pull request, the marker tagtrail reads back from its body, and what
/metrics counts of them."""

from __future__ import annotations

import asyncio

from tagtrail.adapters.notify import Notifier
from tagtrail.adapters.refs import Image
from tagtrail.domain.policy import Decision, Reason, Running
from tagtrail.domain.scheme import Scheme
from tagtrail.errors import GitHubError
from tagtrail.reconcile import Outcome, Planned, Report
from tagtrail.reconcile.outcome import outcome_of
from tagtrail.serve.controller.results import Results
from tagtrail.serve.controller.snapshot import Status
from tagtrail.serve.metrics import Metrics
from tagtrail.serve.web.views import row
from tagtrail.targets.base import Applied, Change, Details, ImageChange, Proof, Review, Reviewing
from tagtrail.targets.pullbody import BODY_MAX, Links, Marker, body, title, with_marker

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
OLD = "ghcr.io/acme/homelab/web:main.20251231-220000.9e1b0d4@sha256:" + "5" * 64
NEW = Image("ghcr.io/acme/homelab/web", "main.20260101-050000.3f2a9c1", "sha256:" + "c" * 64)
BUILT = "3f2a9c1" + "0" * 33
BASE = ("docker.io/library/python:3.12-slim", "sha256:" + "b" * 64)
CHECKED = Proof(BUILT, "main", "signed by a trusted key (the .sig tag)", None, BASE, label=True)
CHANGE = Change(
    "deploy",
    "tagtrail serve",
    (ImageChange("web", NEW, "newer-build", "the newest eligible build", BUILT, proof=CHECKED),),
)
SHORT = "c" * 16  # the marker's note of NEW: its digest's first 16 hex digits


def test_the_title_names_each_app_and_its_new_tag() -> None:
    assert title(CHANGE, ["web"], {"web": OLD}) == "tagtrail deploy: web main.20260101-050000.3f2a9c1"


def test_the_body_says_from_to_why_and_the_commits_between_linked() -> None:
    text = body(CHANGE, ["web"], {"web": OLD}, SCHEME, Links("https://github.com/acme/homelab"))
    assert f"| from | `{OLD}` |" in text
    assert f"| to | `{NEW.reference}` |" in text
    assert "**Why:** `newer-build`: the newest eligible build" in text
    assert f"[9e1b0d4...3f2a9c1](https://github.com/acme/homelab/compare/9e1b0d4...{BUILT})" in text
    assert Marker.read(text) == Marker("deploy", {"web": SHORT})


def test_the_body_carries_the_provenance_the_policy_checked() -> None:
    text = body(CHANGE, ["web"], {"web": OLD}, SCHEME, Links("https://github.com/acme/homelab"))
    assert f"commit [`{BUILT[:12]}`](https://github.com/acme/homelab/commit/{BUILT}) is on `main`" in text
    assert "signature: signed by a trusted key (the .sig tag)" in text
    assert f"base image `{BASE[0]}@{BASE[1]}`" in text
    assert "attestation" not in text  # not configured, so not claimed


def test_a_person_s_rollback_claims_no_check() -> None:
    item = ImageChange("web", NEW, "rollback", "rolled back by alice", BUILT)
    text = body(Change("rollback", "alice", (item,), {"web": NEW.tag}), ["web"], {}, SCHEME, Links(None))
    assert "**Not checked:** a person's rollback names its build" in text
    assert "signature" not in text


def test_a_marker_s_short_digest_proposes_that_build_and_no_other() -> None:
    review = Review(3, "u", "open", SHORT)
    assert review.proposes(NEW.reference)
    assert not review.proposes(OLD)
    assert Review(3, "u", "open", NEW.reference).proposes(NEW.reference)  # a marker written before
    assert not Review(3, "u", "open", None).proposes(NEW.reference)


def test_the_body_of_many_apps_is_cut_within_github_s_limit_naming_how_many_more() -> None:
    apps = [f"app{n:04}" for n in range(1500)]
    images = tuple(
        ImageChange(
            app,
            Image(f"ghcr.io/acme/homelab/{app}", NEW.tag, NEW.digest),
            "newer-build",
            "newer",
            BUILT,
            proof=CHECKED,
        )
        for app in apps
    )
    compare = "https://github.com/acme/homelab/compare/main...tagtrail/reconcile"
    links = Links("https://github.com/acme/homelab", compare)
    text = body(Change("deploy", "tagtrail serve", images), apps, {}, SCHEME, links)
    assert len(text) <= BODY_MAX
    shown = text.count("\n### app")
    assert 0 < shown < len(apps)
    assert f"… and {len(apps) - shown} more apps" in text
    assert f"[the whole change]({compare})" in text
    marker = Marker.read(text)
    assert marker is not None
    assert len(marker.apps) == len(apps)  # every app's build still read back


def test_a_superseded_marker_replaces_the_old_one_and_keeps_the_text() -> None:
    text = body(CHANGE, ["web"], {"web": None}, SCHEME, Links(None))
    marker = Marker.read(text)
    assert marker is not None
    closed = with_marker(text, marker.superseding())
    assert Marker.read(closed) == Marker("deploy", {"web": SHORT}, superseded=True)
    assert closed.count("<!-- tagtrail") == 1
    assert "**Provenance:** commit" in closed


def test_a_body_tagtrail_did_not_write_has_no_marker() -> None:
    assert Marker.read("Bump web to 1.2 <!-- tagtrail {not json} -->") is None
    assert Marker.read("") is None


def test_metrics_count_the_last_list_of_pull_requests_by_state() -> None:
    metrics = Metrics()
    report = Report([], Applied(details=Details(Reviewing(counts={"open": 2, "declined": 1}))))
    asyncio.run(Results(Status(), metrics, Notifier([])).succeeded(report, 3))
    text = metrics.render().decode()
    assert 'tagtrail_pull_requests{state="open"} 2.0' in text
    assert 'tagtrail_pull_requests{state="declined"} 1.0' in text
    assert 'tagtrail_pull_requests{state="merged"} 0.0' in text


def test_github_s_refusals_stall_and_its_rate_limit_is_retried() -> None:
    assert outcome_of(GitHubError("the token may not open a pull request")) is Outcome.STALLED
    assert outcome_of(GitHubError("rate limit used up", transient=True)) is Outcome.RETRY


def test_the_dashboard_row_of_an_app_pending_review_says_so() -> None:
    running = Running("main.20251231-220000.9e1b0d4", None)
    said = "pending-review #7 URL: newer"
    decision = Decision(
        "web", "deploy", Reason.NEWER_BUILD, said, running, target_tag=NEW.tag, digest=NEW.digest
    )
    review = Review(7, "https://github.com/acme/homelab/pull/7", "open", NEW.reference)
    shown = row(Planned(decision, NEW.repository, review=review), SCHEME, None, None, None, None)
    assert shown.state == "pending-review"
    assert shown.sentence.startswith("pending-review #7")
