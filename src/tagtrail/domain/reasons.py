"""Why a decision is what it is: one enum of stable codes (stored in the decision log, the commit trailers,
`tagtrail plan` and the dashboard), and the refusals of a tag's claims as a subset of it. Pure: it sits
below both the policy and `provenance`, so that each code is spelled once and neither casts the other's."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class Reason(StrEnum):
    """Why a decision is what it is: a stable code, stored in the decision log and commit trailers."""

    NEWER_BUILD = "newer-build"
    REBUILD = "rebuild"
    BASE_IMAGE = "base-image"  # a rebuild of the running commit while the running build's base has moved
    RUNNING_UNKNOWN = "running-unknown"
    PIN_DIGEST = "pin-digest"
    UP_TO_DATE = "up-to-date"
    PINNED = "pinned"
    ROLLBACK = "rollback"
    PIN = "pin"
    PIN_FORCED = "pin-forced"  # a person pinned a tag that is not an eligible build, on purpose
    UNPIN = "unpin"
    ROLLOUT_FAILED = "rollout-failed"  # the cluster did not run the deployed build (or rolled it back)
    ROLLED_OUT = "rolled-out"  # the cluster runs the deployed build (a GitOps deploy, followed)
    APPLIED = "applied"  # deploy.git.applied_by applied the deploy commit (or a later one)
    APPLY_FAILED = "apply-failed"  # deploy.git.applied_by failed on the deploy commit (its message kept)
    NOT_APPLIED = "not-applied"  # deploy.git.applied_by did not get to the deploy commit within its timeout
    DECLINED = "declined"  # a person closed the pull request proposing this build without merging it
    PROMOTED = "promoted"  # a build that ran well in the environment before, deployed to the next
    PROMOTE_FORCED = "promote-forced"  # a person promoted a build whose gate was closed, on purpose
    NOT_IN_SOURCE = "not-in-source"  # from here to AWAITING_APPROVAL: an environment's gate is closed
    NOT_READY_IN_SOURCE = "not-ready-in-source"
    SOAKING = "soaking"
    FAILED_IN_SOURCE = "failed-in-source"
    PINNED_IN_SOURCE = "pinned-in-source"
    AWAITING_APPROVAL = "awaiting-approval"
    NO_ELIGIBLE_TAGS = "no-eligible-tags"
    TOO_YOUNG = "too-young"
    ANCESTOR_OF_RUNNING = "ancestor-of-running"
    COOLDOWN = "cooldown"
    REGISTRY_ERROR = "registry-error"
    COMMIT_UNKNOWN = "commit-unknown"  # from here: a tag's claims refused (`Refused`)
    COMMIT_AMBIGUOUS = "commit-ambiguous"
    COMMIT_NOT_ON_BRANCH = "commit-not-on-branch"
    REVISION_MISMATCH = "revision-mismatch"
    DATED_IN_THE_FUTURE = "dated-in-the-future"
    TAG_MOVED = "tag-moved"
    UNSIGNED = "unsigned"
    SIGNATURE_INVALID = "signature-invalid"
    NOT_ATTESTED = "not-attested"
    ATTESTATION_INVALID = "attestation-invalid"
    ATTESTED_IDENTITY_MISMATCH = "attested-identity-mismatch"
    ATTESTED_REF_MISMATCH = "attested-ref-mismatch"
    ATTESTED_COMMIT_MISMATCH = "attested-commit-mismatch"


# The reasons a candidate's claims are not believed: a type, so that a refusal can only carry one of
# them, and the decision that holds on a refusal passes its code on as is.
Refused = Literal[
    Reason.COMMIT_UNKNOWN,
    Reason.COMMIT_AMBIGUOUS,
    Reason.COMMIT_NOT_ON_BRANCH,
    Reason.REVISION_MISMATCH,
    Reason.DATED_IN_THE_FUTURE,
    Reason.TAG_MOVED,
    Reason.UNSIGNED,
    Reason.SIGNATURE_INVALID,
    Reason.NOT_ATTESTED,
    Reason.ATTESTATION_INVALID,
    Reason.ATTESTED_IDENTITY_MISMATCH,
    Reason.ATTESTED_REF_MISMATCH,
    Reason.ATTESTED_COMMIT_MISMATCH,
]
REFUSALS: tuple[Reason, ...] = get_args(Refused)
