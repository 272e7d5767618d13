"""What a follower believes of the leader: the address on the Lease (pure checks), and the leader's answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from lightkube import AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import Container, PodSpec, PodStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from tagtrail.adapters.history import DecisionRecord
from tagtrail.adapters.kube.leader import LeaderAddress, current, leader_url, pod_of
from tagtrail.serve.controller.decisions import from_json, to_json

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("claimed", "believed"),
    [
        ("http://10.244.1.7:8080", ("http://10.244.1.7:8080", "10.244.1.7")),
        ("http://[fd00::7]:8080", ("http://[fd00::7]:8080", "fd00::7")),
        ("http://10.244.1.7:8080/", None),  # a path: a request to /hooks/generic lands elsewhere
        ("http://10.244.1.7:8080/steal?to=", None),
        ("http://10.244.1.7:8080?x=1", None),
        ("http://10.244.1.7:8080#x", None),
        ("http://user:pw@10.244.1.7:8080", None),
        ("http://evil.example:8080", None),  # a name to resolve is not the Pod's IP
        ("https://10.244.1.7:8080", None),
        ("http://10.244.1.7", None),  # no port
        ("http://010.244.1.7:8080", None),  # not the IP's own spelling
        ("http://[fd00:0::7]:8080", None),
        ("http://10.244.1.7:99999", None),
        ("ftp://10.244.1.7:21", None),
        ("", None),
        (None, None),
        ("http://10.244.1.7:8080" + "0" * 60, None),
    ],
)
def test_the_leader_address_is_believed_only_as_http_ip_port(
    claimed: str | None, believed: tuple[str, str] | None
) -> None:
    assert leader_url(claimed) == believed


def test_only_a_held_lease_renewed_within_its_duration_names_a_leader() -> None:
    held = LeaseSpec(holderIdentity="tagtrail-0_ab12cd34", renewTime=NOW, leaseDurationSeconds=15)
    assert current(held, NOW + timedelta(seconds=14))
    assert not current(held, NOW + timedelta(seconds=15))  # expired by its own renew time
    assert not current(LeaseSpec(renewTime=NOW, leaseDurationSeconds=15), NOW)  # released
    assert not current(LeaseSpec(holderIdentity="x_1", leaseDurationSeconds=15), NOW)
    assert pod_of("tagtrail-7d9f-x2x_ab12cd34") == "tagtrail-7d9f-x2x"


class Pods:
    """lightkube's AsyncClient as LeaderAddress uses it: the holder's Pod and this replica's own (tagtrail-1),
    counted reads of the holder's."""

    def __init__(self, ip: str, account: str = "tagtrail", phase: str = "Running") -> None:
        self.ip, self.account, self.phase = ip, account, phase
        self.reads = 0

    async def get(self, kind: type[Pod], name: str, *, namespace: str) -> Pod:
        assert (kind, namespace) == (Pod, "tagtrail")
        assert name in ("tagtrail-0", "tagtrail-1")
        self.reads += name == "tagtrail-0"
        ip, account = (self.ip, self.account) if name == "tagtrail-0" else ("10.244.2.2", "tagtrail")
        spec = PodSpec(containers=[Container(name="tagtrail")], serviceAccountName=account)
        status = PodStatus(podIP=ip, phase=self.phase if name == "tagtrail-0" else "Running")
        return Pod(metadata=ObjectMeta(name=name), spec=spec, status=status)


def test_the_address_is_believed_when_it_is_the_holder_pods_ip_and_asked_once() -> None:
    spec = LeaseSpec(holderIdentity="tagtrail-0_ab12cd34", renewTime=NOW, leaseDurationSeconds=15)
    pods, other = Pods("10.244.1.7"), Pods("10.244.9.9")

    async def go() -> list[str | None]:
        leader, liar = LeaderAddress("tagtrail", "tagtrail-1"), LeaderAddress("tagtrail", "tagtrail-1")
        client, lying = cast(AsyncClient, pods), cast(AsyncClient, other)
        return [
            await leader.prove(client, "api", spec, "http://10.244.1.7:8080", NOW),
            await leader.prove(client, "api", spec, "http://10.244.1.7:8080", NOW),  # remembered
            await leader.prove(client, "api", spec, "http://10.244.1.7:8080", NOW + timedelta(minutes=1)),
            await leader.prove(client, "api", spec, "http://10.244.1.7:8080/x", NOW),
            await liar.prove(lying, "api", spec, "http://10.244.1.7:8080", NOW),  # another Pod's IP
        ]

    assert asyncio.run(go()) == ["http://10.244.1.7:8080", "http://10.244.1.7:8080", None, None, None]
    assert pods.reads == 1


@pytest.mark.parametrize("holder", ["tagtrail-0_ab12cd34", "a/../../secrets/tagtrail-serve_1", "_1"])
def test_the_holder_must_be_a_pod_of_this_replicas_service_account(holder: str) -> None:
    """Whoever may update the Lease could name another app's Pod in the namespace as the holder, and its IP
    as the address: a follower would send it the replicas' secret. The holder's Pod must run as this
    replica's own service account (only who may create Pods can make one, and they hold the secret anyway),
    and its name must be a Pod's name."""
    spec = LeaseSpec(holderIdentity=holder, renewTime=NOW, leaseDurationSeconds=15)

    async def go() -> str | None:
        other_app = cast(AsyncClient, Pods("10.244.1.7", account="grafana"))
        return await LeaderAddress("tagtrail", "tagtrail-1").prove(
            other_app, "api", spec, "http://10.244.1.7:8080", NOW
        )

    assert asyncio.run(go()) is None


def test_a_leaders_answer_in_another_shape_is_not_read_as_decisions() -> None:
    record = DecisionRecord("web", "deploy", "newer-build", "is newer", "main.1", "main.2", "tagtrail serve")
    assert from_json(to_json(record)) == record
    for shape in ({**to_json(record), "verdict": "x"}, {**to_json(record), "app": 3}, {"app": "web"}):
        with pytest.raises((TypeError, KeyError, ValueError)):
            from_json(shape)


def test_a_proof_is_read_again_when_it_is_old_or_the_lease_lapsed() -> None:
    """Whoever may update the Lease can keep it current with the same holder and address after that Pod is
    gone: a proof remembered for ever was believed once its IP belonged to another Pod."""
    pods = Pods("10.244.1.7")

    def held(at: datetime) -> LeaseSpec:
        return LeaseSpec(holderIdentity="tagtrail-0_ab12cd34", renewTime=at, leaseDurationSeconds=15)

    async def go() -> list[str | None]:
        leader, client, claim = (
            LeaderAddress("tagtrail", "tagtrail-1"),
            cast(AsyncClient, pods),
            "http://10.244.1.7:8080",
        )
        first = await leader.prove(client, "api", held(NOW), claim, NOW)
        pods.ip = "10.244.3.3"  # the Pod was replaced; another Pod has 10.244.1.7 now
        soon = NOW + timedelta(seconds=5)
        cached = await leader.prove(client, "api", held(soon), claim, soon)
        later = NOW + timedelta(minutes=2)
        return [first, cached, await leader.prove(client, "api", held(later), claim, later)]

    assert asyncio.run(go()) == ["http://10.244.1.7:8080", "http://10.244.1.7:8080", None]


@pytest.mark.parametrize("phase", ["Failed", "Succeeded", "Pending"])
def test_a_holder_pod_that_does_not_run_proves_nothing(phase: str) -> None:
    """A Pod that failed (evicted) keeps its object and its status.podIP while the IP goes to another Pod."""
    pods = Pods("10.244.1.7", phase=phase)
    spec = LeaseSpec(holderIdentity="tagtrail-0_ab12cd34", renewTime=NOW, leaseDurationSeconds=15)

    async def go() -> str | None:
        return await LeaderAddress("tagtrail", "tagtrail-1").prove(
            cast(AsyncClient, pods), "api", spec, "http://10.244.1.7:8080", NOW
        )

    assert asyncio.run(go()) is None
