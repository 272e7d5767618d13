"""The public API is small and deliberate: what `tagtrail` exports is exactly this list."""

from __future__ import annotations

import importlib
import pkgutil

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


def _every_module() -> list[str]:
    names = [tagtrail.__name__]
    names += [m.name for m in pkgutil.walk_packages(tagtrail.__path__, "tagtrail.")]
    return [n for n in names if not n.startswith(("tagtrail.__main__", "tagtrail.cli.commands"))]


def test_every_error_the_package_defines_is_a_tagtrail_error() -> None:
    """Walks every module of the package, not only errors.py: an exception class defined anywhere must sit
    in the tree, so the CLI's one `except TagtrailError` catches it and prints one line."""
    defined = []
    for name in _every_module():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                defined.append(value)
    assert len(defined) >= 8
    outside = [f"{e.__module__}.{e.__name__}" for e in defined if not issubclass(e, tagtrail.TagtrailError)]
    assert outside == []


def test_the_error_tree_is_drawn_in_the_errors_docstring() -> None:
    errors = [
        value
        for value in vars(tagtrail.errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    for error in errors:
        assert issubclass(error, tagtrail.TagtrailError), error
        assert error.__name__ in (tagtrail.errors.__doc__ or ""), f"{error.__name__} is missing from the tree"


def test_no_exception_shadows_a_builtin() -> None:
    import builtins

    for name in _every_module():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == name:
                assert not hasattr(builtins, attr), f"{name}.{attr} shadows the builtin"
