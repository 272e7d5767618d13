"""The tag scheme: a docker/metadata-action template that formats tags and parses them back. Pure; no I/O."""

from tagtrail.domain.scheme.parsed import ParsedTag, RejectCode, Rejected
from tagtrail.domain.scheme.ranking import Candidates, Ranking, rank
from tagtrail.domain.scheme.tags import Scheme
from tagtrail.domain.scheme.validity import (
    MAX_TAG_LENGTH,
    CheckedTags,
    first_invalid_tag,
    is_valid_tag,
    sanitize_tag,
)
from tagtrail.domain.scheme.zones import suggest_zone

__all__ = [
    "MAX_TAG_LENGTH",
    "Candidates",
    "CheckedTags",
    "ParsedTag",
    "Ranking",
    "RejectCode",
    "Rejected",
    "Scheme",
    "first_invalid_tag",
    "is_valid_tag",
    "rank",
    "sanitize_tag",
    "suggest_zone",
]
