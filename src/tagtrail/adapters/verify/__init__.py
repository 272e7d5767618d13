"""Signed images (DESIGN invariant 9): cosign's key-based signatures, found beside an image in its registry
and checked offline against the configured public keys."""

from tagtrail.adapters.verify.cosign import Found, find, signature_tag
from tagtrail.adapters.verify.keys import fingerprint, load_keys, verify_image
from tagtrail.adapters.verify.signatures import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    Checked,
    Signed,
    check,
    judge,
)

__all__ = [
    "SIGNATURE_ANNOTATION",
    "SIMPLE_SIGNING",
    "Checked",
    "Found",
    "Signed",
    "check",
    "find",
    "fingerprint",
    "judge",
    "load_keys",
    "signature_tag",
    "verify_image",
]
