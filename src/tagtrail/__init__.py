"""tagtrail: continuous deployment for a monorepo of container apps.

The public API is small on purpose: the config, the tag scheme and the errors. Everything else is reached
through the command line.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tagtrail")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from tagtrail.config import Config, load_config, parse_config
from tagtrail.errors import ConfigError, GitError, Problem, SandboxError, SchemeError, TagtrailError
from tagtrail.scheme import ParsedTag, Rejected, Scheme

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
