"""Importing this module registers every command on the root app."""

from tagtrail.cli import (
    apps_cmd,
    baseimages_cmd,
    build_cmd,
    config_cmd,
    demo_cmd,
    deploy_cmd,
    init_cmd,
    promote_cmd,
    prune_cmd,
    registry_cmd,
    report_cmd,
    serve_cmd,
    tag,
    verify_cmd,
)

__all__ = [
    "apps_cmd",
    "baseimages_cmd",
    "build_cmd",
    "config_cmd",
    "demo_cmd",
    "deploy_cmd",
    "init_cmd",
    "promote_cmd",
    "prune_cmd",
    "registry_cmd",
    "report_cmd",
    "serve_cmd",
    "tag",
    "verify_cmd",
]
