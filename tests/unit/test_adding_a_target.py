"""A contributor adds a third target: one module (filetarget.py, beside this test) and one config section
(`deploy.file:`). The public factory builds it from the config, and it deploys through the reconciler's
loop like the others: decide, write, and on a conflict read and decide again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import filetarget
import pytest
from fakes import SCHEME, FakeRegistry, build, digest_of

from tagtrail.adapters.registry import ImageRef, Inspection
from tagtrail.config import load_config
from tagtrail.errors import ConfigError, TagtrailError
from tagtrail.reconcile import Outcome, Reconciler
from tagtrail.targets.base import Rollouts, Then
from tagtrail.targets.factory import open_project
from tagtrail.targets.project import Project

OLD, NEW = build("main", 48, "aaaaaaa"), build("main", 2, "ccccccc")


def project_in(
    tmp_path: Path, registry: FakeRegistry, section: str = "file:\n    path: deployed.json\n"
) -> Project[FakeRegistry]:
    (tmp_path / "tagtrail.yaml").write_text(
        f'scheme: "{SCHEME}"\nimage: registry.test/acme/{{app}}\ndeploy:\n  decision_log: {tmp_path / "log.sqlite"}\n  {section}'
    )
    return open_project(load_config(tmp_path / "tagtrail.yaml"), tmp_path / "tagtrail.yaml", registry)


def deployed(tmp_path: Path) -> dict[str, str]:
    return json.loads((tmp_path / "deployed.json").read_text())["apps"]


def test_the_factory_builds_a_third_target_from_its_section_and_the_reconciler_deploys_to_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "deployed.json").write_text(
        json.dumps({"version": 1, "apps": {"web": f"registry.test/acme/web:{OLD}@{digest_of(OLD)}"}})
    )
    project = project_in(tmp_path, FakeRegistry({"acme/web": [OLD, NEW]}))
    assert isinstance(project.target, filetarget.FileTarget)
    report = asyncio.run(Reconciler(project).run(actor="test"))
    assert report.outcomes() == {"web": Outcome.DEPLOYED}
    assert deployed(tmp_path) == {"web": f"registry.test/acme/web:{NEW}@{digest_of(NEW)}"}
    assert project.log.last_each()["web"].commit == "version 2"
    # the next run finds it there: nothing to write
    assert asyncio.run(Reconciler(project).run(actor="test")).outcomes() == {"web": Outcome.NOTHING}


def test_a_third_target_says_its_own_details_beside_the_common_fields_and_not_the_others(
    tmp_path: Path,
) -> None:
    (tmp_path / "deployed.json").write_text(
        json.dumps({"version": 1, "apps": {"web": f"registry.test/acme/web:{OLD}@{digest_of(OLD)}"}})
    )
    report = asyncio.run(
        Reconciler(project_in(tmp_path, FakeRegistry({"acme/web": [OLD, NEW]}))).run(actor="t")
    )
    details = report.applied.details
    assert (report.applied.commit, details.get(filetarget.Written)) == ("version 2", filetarget.Written(2))
    assert details.get(Then) is None  # git's own detail: not this target's
    assert Rollouts.of(details) == Rollouts()  # nor the cluster's


class WrittenMeanwhile(FakeRegistry):
    """While the reconciler decides (reading the winner's image), another writer adds an app to the file."""

    def __init__(self, tags: dict[str, list[str]], path: Path) -> None:
        super().__init__(tags)
        self.path = path

    async def inspect(self, ref: ImageRef) -> Inspection:
        data = json.loads(self.path.read_text())
        if "api" not in data["apps"]:
            data["apps"]["api"] = f"registry.test/acme/api:{OLD}@{digest_of(OLD)}"
            self.path.write_text(json.dumps({"version": data["version"] + 1, "apps": data["apps"]}))
        return await super().inspect(ref)


def test_a_write_that_loses_to_another_is_decided_again_and_overwrites_nothing(tmp_path: Path) -> None:
    (tmp_path / "deployed.json").write_text(
        json.dumps({"version": 1, "apps": {"web": f"registry.test/acme/web:{OLD}@{digest_of(OLD)}"}})
    )
    registry = WrittenMeanwhile({"acme/web": [OLD, NEW]}, tmp_path / "deployed.json")
    report = asyncio.run(Reconciler(project_in(tmp_path, registry)).run(actor="test", apps=["web"]))
    assert report.outcomes() == {"web": Outcome.DEPLOYED}
    assert report.applied is not None
    assert report.applied.attempts == 2
    assert deployed(tmp_path) == {
        "web": f"registry.test/acme/web:{NEW}@{digest_of(NEW)}",
        "api": f"registry.test/acme/api:{OLD}@{digest_of(OLD)}",  # the other writer's, kept
    }


def test_a_bad_section_is_one_line_at_its_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tagtrail.yaml:6:\d+: deploy.file.path"):
        project_in(tmp_path, FakeRegistry({}), "file:\n    path: [1]\n")


def test_a_second_target_section_beside_git_is_one_clear_error(tmp_path: Path) -> None:
    both = "git:\n    files: [deploy.yaml]\n  file:\n    path: deployed.json\n"
    with pytest.raises(TagtrailError, match=r"^deploy.git and deploy.file are both set: .* keep one$"):
        project_in(tmp_path, FakeRegistry({}), both)
