"""The deploy policy: from what runs and the registry's tags, a Decision with its Reason. Pure: no I/O.

Guards, each a DESIGN invariant:
- only tags of an eligible branch and of the scheme are ever chosen (never -dirty builds);
- never an older build than the one running: the time in the tag orders builds; a running tag that cannot
  be read (a cold cache, a hand-written reference) is "unknown", never "older";
- a candidate whose commit is a strict ancestor of the running commit is not an upgrade, whatever its
  timestamp says (builds finish out of order); a newer build of the same code is (base-image: on a moved base);
- every deploy pins the digest, and a tag already deployed with its digest is not deployed again;
- a pinned app holds at its pin; at most one automatic deploy per app per cooldown window;
- a tag's claims are checked (`provenance`): a refused candidate is skipped, the next one considered;
- an environment that takes builds from another (a `Gate`) deploys only what ran well there (`_gate`).

The policy never fetches: where it needs a fact it does not have, it returns what it needs (NeedCreated,
NeedAncestry, NeedDigest, NeedCommit, …) and the reconciler asks it again with the answer. Deciding again
on files changed under a retry (a rejected push) is the same call with the new state: a pin that landed wins.
"""

from tagtrail.domain.policy._decide import decide, eligible_build, explicit
from tagtrail.domain.policy._values import (
    Action,
    AppPolicy,
    Decision,
    Evidence,
    Facts,
    Gate,
    Need,
    NeedAncestry,
    NeedCreated,
    NeedEvidence,
    Running,
)
from tagtrail.domain.provenance import NeedDigest
from tagtrail.domain.reasons import Reason

__all__ = [
    "Action",
    "AppPolicy",
    "Decision",
    "Evidence",
    "Facts",
    "Gate",
    "Need",
    "NeedAncestry",
    "NeedCreated",
    "NeedDigest",
    "NeedEvidence",
    "Reason",
    "Running",
    "decide",
    "eligible_build",
    "explicit",
]
