"""The public API is small and deliberate: what `tagtrail` exports is exactly this list."""

from __future__ import annotations

import tagtrail
import tagtrail.errors


def test_exports() -> None:
    assert sorted(tagtrail.__all__) == [
        "Config",
        "ConfigError",
        "GitError",
        "ParsedTag",
        "Problem",
        "Rejected",
        "SandboxError",
        "Scheme",
        "SchemeError",
        "TagtrailError",
        "__version__",
        "load_config",
        "parse_config",
    ]
    for name in tagtrail.__all__:
        assert hasattr(tagtrail, name), name


def test_every_error_is_a_tagtrail_error() -> None:
    errors = [
        value
        for value in vars(tagtrail.errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(errors) >= 5
    for error in errors:
        assert issubclass(error, tagtrail.TagtrailError), error
        assert error.__name__ in (tagtrail.errors.__doc__ or ""), f"{error.__name__} is missing from the tree"
