"""Which module defines each command, so a run imports only the one it needs: `tagtrail report` need not
load the registry client, the web server or the signature code. Help, and a name nobody defines, load
them all (their list is the help)."""

from __future__ import annotations

import importlib

# command (the first word after the global options) → the module under tagtrail.cli that defines it
COMMANDS = {
    "apps": "apps_cmd",
    "base-images": "baseimages_cmd",
    "build": "build_cmd",
    "ci": "build_cmd",
    "config": "config_cmd",
    "demo": "demo_cmd",
    "deploy": "deploy_cmd",
    "history": "deploy_cmd",
    "init": "init_cmd",
    "pin": "deploy_cmd",
    "plan": "deploy_cmd",
    "promote": "promote_cmd",
    "prune": "prune_cmd",
    "registry": "registry_cmd",
    "report": "report_cmd",
    "rollback": "deploy_cmd",
    "serve": "serve_cmd",
    "status": "deploy_cmd",
    "tag": "tag",
    "unpin": "deploy_cmd",
    "verify": "verify_cmd",
}
_TAKES_A_VALUE = {"-c", "--config"}  # global options followed by their value


def command_of(args: list[str]) -> str | None:
    """The command word of a command line, past the global options; None when there is none."""
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _TAKES_A_VALUE:
            skip = True
            continue
        if not arg.startswith("-"):
            return arg
    return None


def load(args: list[str]) -> None:
    """Register the commands this command line needs on the root app."""
    command = command_of(args)
    if command is None and "--version" in args and not {"--help", "-h"} & set(args):
        return  # the root's eager --version answers before any command is needed
    module = COMMANDS.get(command or "")
    if module is None or "--help" in args[:1] or "-h" in args[:1]:
        importlib.import_module("tagtrail.cli.commands")
        return
    importlib.import_module(f"tagtrail.cli.{module}")
