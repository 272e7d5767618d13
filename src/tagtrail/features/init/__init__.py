"""`tagtrail init`: read an existing monorepo and propose the tagtrail.yaml that fits it.

    survey(root) → Proposal                apps, scheme, image, aliases, deploy files, branch, and what to do
    existing_config(proposal) → str | None  the tagtrail.yaml there now, read as every file init reads
    write_config(proposal) → bool          the proposal's text, written atomically at the top of the repository

Everything is read from what the repository already says, each file through `reader`: app folders and their
Dockerfiles (`folders`), docker/metadata-action steps of its GitHub workflows (`workflow`, their expressions
`expressions`), and the YAML files that name the images (`deployfiles`); `naming` picks the image template,
`render` writes the text and `survey` checks it with the config loader.
"""

from __future__ import annotations

from pathlib import Path

from tagtrail.adapters import generated
from tagtrail.config import CONFIG_NAME
from tagtrail.config.guard import CONFIG_MAX_BYTES
from tagtrail.errors import TagtrailError
from tagtrail.features.init.choice import Choice
from tagtrail.features.init.proposal import Proposal
from tagtrail.features.init.reader import Reader
from tagtrail.features.init.survey import github_repository, survey

__all__ = [
    "Choice",
    "Proposal",
    "config_path",
    "existing_config",
    "github_repository",
    "survey",
    "write_config",
]


def config_path(proposal: Proposal) -> Path:
    return proposal.root / CONFIG_NAME


def existing_config(proposal: Proposal) -> str | None:
    """The tagtrail.yaml there now (None when there is none), read as init reads every file: one linked out
    of the repository, not a regular file, or too large is an error, never followed or read whole."""
    reader = Reader(proposal.root)
    text = reader.text(CONFIG_NAME, CONFIG_MAX_BYTES)
    if reader.skipped:
        (why,) = reader.skipped.values()
        raise TagtrailError(
            f"{config_path(proposal)} is {why}; init neither reads nor replaces it: remove it and run"
            " `tagtrail init` again"
        )
    return text


def write_config(proposal: Proposal) -> bool:
    """Write the proposal's tagtrail.yaml (already validated by `survey`) atomically: no half-written file.
    False when the file already said exactly this."""
    existing_config(proposal)
    return generated.write(config_path(proposal), proposal.text, force=True).outcome != "unchanged"
