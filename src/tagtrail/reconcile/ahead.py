"""Read ahead: the image read the policy is expected to ask for once git has answered it.

A new build's checks come one after another: its commit on the deploy branch and its place above what runs
(git), then its image's revision label (the registry). The registry's answer does not depend on git's, so
while git answers, the policy is asked what it would ask next if git answered as it does for a good build
(the commits on their branch, none below what runs). When that is the revision of an image, its read starts
at once (`Provenance.read_ahead`) and the policy's own question later finds it done: a push's deploy waits
for the slower of the two, not their sum. When git refuses the build after all, the read was one request
spent for nothing, and nothing it read decides anything: the policy asks again on what git said. So it is
done only for a tag list that changed since the last look (or a first look): a build git refused would
otherwise be read again on every poll.
"""

from __future__ import annotations

from dataclasses import replace

from tagtrail.domain.policy import AppPolicy, Facts, NeedAncestry, Running, decide
from tagtrail.domain.provenance import CommitAnswer, CommitState, NeedCommit, NeedRevision
from tagtrail.domain.scheme import Scheme

STEPS = 4  # git's questions the policy may ask before the image's: a commit, an ancestry, a second batch


def ahead(
    app: str,
    scheme: Scheme,
    policy: AppPolicy,
    running: Running,
    facts: Facts,
    need: NeedCommit | NeedAncestry,
) -> NeedRevision | None:
    """The image read the policy would ask for after `need` (and any git question after it) if git's
    answers were a good build's; None when it would ask or decide anything else."""
    for _ in range(STEPS):
        facts = _hoped(facts, need)
        asked = decide(app, scheme, policy, running, facts)
        if isinstance(asked, NeedRevision):
            return asked
        if not isinstance(asked, NeedCommit | NeedAncestry):
            return None
        need = asked
    return None


def _hoped(facts: Facts, need: NeedCommit | NeedAncestry) -> Facts:
    if isinstance(need, NeedAncestry):
        return replace(facts, ancestry={**(facts.ancestry or {}), **dict.fromkeys(need.pairs, False)})
    good = {
        sha: CommitAnswer(CommitState.ON_BRANCH, None, branches[0] if branches else "")
        for sha, branches in need.shas
    }
    return replace(facts, claims=replace(facts.claims, commits={**(facts.claims.commits or {}), **good}))
