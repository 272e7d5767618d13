"""`tagtrail init`: read an existing monorepo and propose the tagtrail.yaml that fits it.

    survey(root) → Proposal        apps, scheme, image, aliases, deploy files, branch, and what to do
    write_config(proposal) → Path  the proposal's text, written atomically at the top of the repository

Everything is read from what the repository already says: app folders and their Dockerfiles
(`folders`), docker/metadata-action steps of its GitHub workflows (`workflow`), and the YAML files that name
the images (`deployfiles`); `render` writes the text and `survey` checks it with the config loader.
"""

from __future__ import annotations

from pathlib import Path

from tagtrail import generated
from tagtrail.config import CONFIG_NAME
from tagtrail.init.choice import Choice
from tagtrail.init.survey import Proposal, github_repository, survey

__all__ = ["Choice", "Proposal", "config_path", "github_repository", "survey", "write_config"]


def config_path(proposal: Proposal) -> Path:
    return proposal.root / CONFIG_NAME


def write_config(proposal: Proposal) -> bool:
    """Write the proposal's tagtrail.yaml (already validated by `survey`) atomically: no half-written file.
    False when the file already said exactly this."""
    return generated.write(config_path(proposal), proposal.text, force=True).outcome != "unchanged"
