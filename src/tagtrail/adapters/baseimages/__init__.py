"""Base images: which image each app builds on, the digest that build used, and whether its tag has moved
since (`tagtrail base-images`, `tagtrail build`, and `tagtrail serve`'s base watch)."""

from tagtrail.adapters.baseimages.check import AppBase, Check, Memory, Running, check
from tagtrail.adapters.baseimages.record import (
    Recorded,
    Resolution,
    ResolvedBase,
    resolve_bases,
)
from tagtrail.adapters.registry.media import BASE_DIGEST, BASE_NAME

__all__ = [
    "BASE_DIGEST",
    "BASE_NAME",
    "AppBase",
    "Check",
    "Memory",
    "Recorded",
    "Resolution",
    "ResolvedBase",
    "Running",
    "check",
    "resolve_bases",
]
