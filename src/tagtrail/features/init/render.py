"""The proposed tagtrail.yaml as text: YAML written out with a comment beside each choice saying where it
came from. It is a new file, so it is written whole (never a re-dump of someone's file); the caller parses
it back with the config loader before anything is written."""

from __future__ import annotations

import json
import re
import textwrap

from tagtrail.features.init.deployfiles import KINDS
from tagtrail.features.init.proposal import Proposal

WIDTH = 110
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(text: str) -> str:
    """A YAML scalar for `text`: plain when that cannot be misread, else double-quoted (JSON's quoting is
    YAML's)."""
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def comment(text: str, indent: str = "") -> str:
    """`text` as comment lines at `indent`, wrapped."""
    return "".join(
        f"{indent}# {line}\n"
        for line in textwrap.wrap(
            text, WIDTH - len(indent) - 2, break_long_words=False, break_on_hyphens=False
        )
    )


def render(p: Proposal) -> str:
    out = comment("tagtrail.yaml, written by `tagtrail init` from what this repository already says.")
    out += comment(
        "Each choice says where it came from; `tagtrail config schema --table` lists every setting."
    )
    out += "\n" + comment(f"The tag scheme: {p.scheme.source}.")
    for note in p.scheme.notes:
        out += comment(note)
    out += f"scheme: {scalar(p.scheme.scheme)}\n"
    if p.scheme.sha_length != 7:
        out += comment("DOCKER_METADATA_SHORT_SHA_LENGTH in the workflow")
        out += f"sha_length: {p.scheme.sha_length}\n"
    out += "\n" + comment(f"Where images are pushed: {p.image.why}.")
    out += f"image: {scalar(p.image.value)}\n"
    if p.insecure:
        out += "registries:\n"
        for host in p.insecure:
            out += comment("on this machine: plain HTTP allowed", "  ")
            out += f"  {scalar(host)}: {{insecure: true}}\n"
    out += "\n" + _apps(p) + "\n" + _deploy(p)
    return out


def _apps(p: Proposal) -> str:
    found = p.found
    names = ", ".join(found.names) or "none yet"
    out = comment(f"Apps: each folder below {found.root}/ with a Dockerfile or Containerfile ({names}).")
    out += f"apps:\n  root: {scalar(found.root)}\n"
    if found.exclude:
        out += "  exclude:\n"
        for folder, why in sorted(found.exclude.items()):
            out += comment(why, "    ") + f"    - {scalar(folder)}\n"
    if found.inputs:
        out += comment(
            "More paths whose changes rebuild an app: what its Dockerfile copies from outside its folder.",
            "  ",
        )
        out += "  inputs:\n"
        for app, items in sorted(found.inputs.items()):
            out += f"    {scalar(app)}:\n"
            for item in items:
                out += comment(item.why, "      ") + f"      - {scalar(item.value)}\n"
    return out


def _deploy(p: Proposal) -> str:
    out = "deploy:\n" + comment(f"Only builds of this branch are deployed: {p.branch.why}.", "  ")
    out += f"  branch: {scalar(p.branch.value)}\n"
    if p.aliases:
        out += comment(
            "Other names of the same images in the deploy files; a deploy writes image: there.", "  "
        )
        out += "  aliases:\n"
        for alias in p.aliases:
            out += comment(alias.why, "    ") + f"    - {scalar(alias.value)}\n"
    if not p.files:
        out += comment("No file here names an app's image yet. When one does, list it:", "  ")
        out += "  # git:\n  #   files: [deploy/apps.yaml]\n"
        return out
    out += "  git:\n" + comment("Deploy commits go to that branch too, whatever is checked out.", "    ")
    out += f"    branch: {scalar(p.branch.value)}\n"
    out += comment("Every file that names an app's image, by kind, with the references in it.", "    ")
    out += "    files:\n"
    for kind in KINDS:
        files = [f for f in p.files if f.kind == kind]
        if files:
            out += f"      # {kind}\n"
        for file in files:
            refs = ", ".join(f"{r.app}:{r.line}" for r in file.refs)
            out += comment(f"references (app:line): {refs}", "      ")
            if file.third_party:
                left = ", ".join(f"{m.text} (line {m.line})" for m in file.third_party)
                out += comment(f"left alone (not an app's image): {left}", "      ")
            out += f"      - {scalar(file.path)}\n"
    return out + _applied_by(p)


def _applied_by(p: Proposal) -> str:
    """The operator's Stack that applies the branch, proposed commented out: following it needs a
    `kubernetes:` section saying how to reach the cluster, which the repository cannot tell."""
    if not p.stacks:
        return ""
    first = p.stacks[0]
    out = comment(
        f"The Pulumi Kubernetes Operator's Stack in {first.where} applies this branch: uncomment to follow it"
        " after each deploy commit (it needs kubernetes:, how to reach the cluster).",
        "    ",
    )
    out += "    # applied_by:\n"
    out += f"    #   pulumi_stack: {{namespace: {first.namespace}, name: {first.name}}}\n"
    return out + "# kubernetes:\n#   namespaces: [default]   # where the apps run\n"
