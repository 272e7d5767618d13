"""Importing this module registers every command on the root app."""

from tagtrail.cli import config_cmd, demo_cmd, registry_cmd, tag

__all__ = ["config_cmd", "demo_cmd", "registry_cmd", "tag"]
