"""The README stays true: its examples are run, its settings table is the schema's."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tagtrail.cli import main
from tagtrail.config import parse_config
from tagtrail.config.docs import markdown_table
from tagtrail.serve.metrics import Metrics

README = (Path(__file__).parents[2] / "README.md").read_text()


def _blocks(marker: str) -> list[str]:
    return re.findall(rf"<!-- {marker} -->\n```console\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("block", _blocks("readme-test"))
def test_console_examples_print_what_the_readme_shows(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    command, *expected = block.rstrip("\n").split("\n")
    args = shlex.split(command.removeprefix("$ "))
    assert args[0] == "tagtrail"
    main(args[1:])
    assert capsys.readouterr().out.rstrip("\n").split("\n") == expected


def test_there_are_console_examples() -> None:
    assert len(_blocks("readme-test")) >= 2


def test_the_settings_table_is_the_schema() -> None:
    table = re.search(r"<!-- settings-table -->\n(.*?)<!-- /settings-table -->", README, flags=re.DOTALL)
    assert table is not None
    assert table.group(1) == markdown_table()


def test_the_config_example_loads_and_its_mistakes_read_as_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = re.search(r"## Configuration.*?```yaml\n(.*?)```", README, flags=re.DOTALL)
    assert example is not None
    parse_config(example.group(1))
    broken = (
        example.group(1).replace("tz='UTC'", "tz='Pacific/Los Angeles'").replace("push: true", "pussh: true")
    )
    (tmp_path / "tagtrail.yaml").write_text(broken)
    monkeypatch.chdir(tmp_path)
    assert main(["config", "check"]) == 1
    shown = re.search(r"```console\n\$ tagtrail config check\n(.*?)```", README, flags=re.DOTALL)
    assert shown is not None
    assert capsys.readouterr().err == shown.group(1)


def test_every_metric_is_in_the_readme() -> None:
    names = [family.name for family in Metrics().registry.collect()]
    assert [name for name in names if f"`{name}" not in README] == []
