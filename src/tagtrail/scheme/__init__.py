"""The tag scheme: a docker/metadata-action template that formats tags and parses them back. Pure; no I/O."""

from tagtrail.scheme.parsed import ParsedTag, RejectCode, Rejected
from tagtrail.scheme.ranking import Candidates, Ranking, rank
from tagtrail.scheme.tags import Scheme
from tagtrail.scheme.validity import (
    MAX_TAG_LENGTH,
    CheckedTags,
    first_invalid_tag,
    is_valid_tag,
    sanitize_tag,
)
from tagtrail.scheme.zones import suggest_zone

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
