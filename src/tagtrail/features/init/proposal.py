"""What `tagtrail init` proposes: what it read of the repository, its choices with their reasons, and the
tagtrail.yaml text (`render` writes it from a Proposal, `survey` makes one and checks the text)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tagtrail.adapters.apps import App
from tagtrail.config import Config
from tagtrail.features.init.choice import Choice
from tagtrail.features.init.deployfiles import DeployFile
from tagtrail.features.init.folders import FoundApps
from tagtrail.features.init.stacks import FoundStack
from tagtrail.features.init.workflow import SchemeChoice


@dataclass
class Proposal:
    """What init read and what it proposes; `text` is the tagtrail.yaml to write (validated)."""

    root: Path
    found: FoundApps
    scheme: SchemeChoice
    image: Choice
    aliases: list[Choice]
    insecure: list[str]
    files: list[DeployFile]
    branch: Choice
    todo: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files not read, one sentence each
    text: str = ""
    apps: list[App] = field(default_factory=list)
    config: Config | None = None
    stacks: list[FoundStack] = field(default_factory=list)  # the operator's Stacks applying the branch

    def references(self) -> dict[str, int]:
        """References per app in the deploy files (0 for an app named nowhere)."""
        counts = Counter(ref.app for file in self.files for ref in file.refs)
        return {app.name: counts.get(app.name, 0) for app in self.apps}
