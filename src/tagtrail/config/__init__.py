"""tagtrail.yaml: its schema (pydantic) and its loading, with file:line:column in every error."""

from tagtrail.config.gittarget import GitTargetConfig
from tagtrail.config.loader import CONFIG_NAME, find_config, load_config, parse_config
from tagtrail.config.model import (
    DEFAULT_SCHEME,
    AppsConfig,
    Config,
    DeployConfig,
    RegistryConfig,
)

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_SCHEME",
    "AppsConfig",
    "Config",
    "DeployConfig",
    "GitTargetConfig",
    "RegistryConfig",
    "find_config",
    "load_config",
    "parse_config",
]
