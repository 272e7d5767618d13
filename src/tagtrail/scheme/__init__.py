"""The tag scheme: a docker/metadata-action template that formats tags and parses them back. Pure; no I/O."""

from tagtrail.scheme.tags import (
    MAX_TAG_LENGTH,
    ParsedTag,
    RejectCode,
    Rejected,
    Scheme,
    is_valid_tag,
    sanitize_tag,
)
from tagtrail.scheme.zones import suggest_zone

__all__ = [
    "MAX_TAG_LENGTH",
    "ParsedTag",
    "RejectCode",
    "Rejected",
    "Scheme",
    "is_valid_tag",
    "sanitize_tag",
    "suggest_zone",
]
