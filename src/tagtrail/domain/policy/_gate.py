"""The gate of an environment that takes builds from another (`from:`): a candidate comes here only when
the environment before runs it (the same digest), it rolled out and was ready there, it has run there for
the soak without a rollback, a pin or a failed rollout, and (a manual gate) a person promotes it. The
evidence is asked for (`NeedEvidence`), never fetched; its start is what ran, so it survives a restart."""

from __future__ import annotations

from tagtrail.domain.humanize import soak as duration
from tagtrail.domain.policy._values import Facts, Gate, NeedEvidence
from tagtrail.domain.provenance import NeedDigest
from tagtrail.domain.reasons import Reason
from tagtrail.domain.scheme import ParsedTag


class Gated:
    """What a closed gate said of the candidates it refused, newest first, and how many newer builds the
    environment before has not run (`absent`)."""

    def __init__(self) -> None:
        self.said: list[tuple[Reason, str]] = []
        self.absent = 0


def closed(
    gated: Gated, candidate: ParsedTag, gate: Gate, facts: Facts, app: str
) -> bool | NeedEvidence | NeedDigest:
    """Whether `candidate` may not come here yet (said in `gated`, or counted there as absent from the
    source), or the fact needed first."""
    evidence, where, tag = facts.evidence, gate.source, candidate.tag
    if evidence is None:
        return NeedEvidence(where)
    if tag in evidence.failed:
        gated.said.append((Reason.FAILED_IN_SOURCE, f"{tag} failed in {where}: {evidence.failed[tag]}"))
        return True
    if tag != evidence.tag:
        gated.absent += 1
        return True
    digest = facts.digests.get(tag)
    if digest is None:
        return NeedDigest(tag)
    if evidence.digest is not None and digest != evidence.digest:
        why = f"{where} runs {tag}@{evidence.digest}, and the tag now names {digest}"
        gated.said.append((Reason.NOT_IN_SOURCE, why))
        return True
    if evidence.pinned:
        why = f"{app} is pinned in {where}: its builds come here once it is unpinned there"
        gated.said.append((Reason.PINNED_IN_SOURCE, why))
        return True
    if evidence.since is None:
        gated.said.append((Reason.NOT_READY_IN_SOURCE, f"{tag} has not rolled out in {where} yet"))
        return True
    ran = facts.now - evidence.since
    if ran < gate.soak:
        left = gate.soak - ran
        why = f"{tag} soaks in {where}: {duration(left)} left of {duration(gate.soak)}"
        gated.said.append((Reason.SOAKING, why))
        return True
    if gate.manual and not facts.approved:
        why = f"{tag} ran well in {where} for {duration(ran)}: `tagtrail promote {app}` promotes it"
        gated.said.append((Reason.AWAITING_APPROVAL, why))
        return True
    return False
