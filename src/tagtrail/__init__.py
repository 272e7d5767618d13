"""tagtrail: continuous deployment for a monorepo of container apps.

The public API is small on purpose: the config, the tag scheme and the errors. Everything else is reached
through the command line.

Names are imported when first used (PEP 562): `tagtrail --version` or `tagtrail tag` must not pay for the
config's pydantic models, and a command imports only what it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place the version is written: hatchling reads it from here (pyproject's [tool.hatch.version]), so
# printing it needs no importlib.metadata (which costs more than the interpreter's start-up).
__version__ = "0.1.0"

if TYPE_CHECKING:
    from tagtrail.config import Config, load_config, parse_config
    from tagtrail.domain.scheme import ParsedTag, Rejected, Scheme
    from tagtrail.errors import ConfigError, GitError, Problem, SandboxError, SchemeError, TagtrailError

_WHERE = {
    "Config": "tagtrail.config",
    "load_config": "tagtrail.config",
    "parse_config": "tagtrail.config",
    "ConfigError": "tagtrail.errors",
    "GitError": "tagtrail.errors",
    "Problem": "tagtrail.errors",
    "SandboxError": "tagtrail.errors",
    "SchemeError": "tagtrail.errors",
    "TagtrailError": "tagtrail.errors",
    "ParsedTag": "tagtrail.domain.scheme",
    "Rejected": "tagtrail.domain.scheme",
    "Scheme": "tagtrail.domain.scheme",
}

__all__ = [
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tagtrail' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
