"""The command line as a user meets it: exit codes, one-line errors, --json everywhere data is printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import tagtrail
from bench.cli import run
from tagtrail.config.docs import markdown_table

GOOD = "image: ghcr.io/acme/homelab/{app}\ndeploy:\n  pins:\n    web: main.20251014-050954.185c95c\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "tagtrail.yaml").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"tagtrail {tagtrail.__version__}\n", "")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["tag", "--help"],
        ["tag", "parse", "--help"],
        ["config", "--help"],
        ["config", "check", "--help"],
        ["config", "schema", "--help"],
        ["demo", "--help"],
    ],
)
def test_help_is_there_for_every_command(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "Usage: tagtrail" in out


def test_no_command_shows_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 2  # as click does for a group called without a command
    assert "Usage: tagtrail" in out
    assert "Commands" in out


def test_a_usage_error_exits_2_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tag", "--no-such-option")
    assert code == 2
    assert "No such option" in err
    assert "Traceback" not in err


def test_config_check_passes_and_shows_what_it_read(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out, _ = run(capsys, "config", "check")
    assert code == 0
    assert "tagtrail.yaml is valid" in out
    assert "main.20251014-051038.185c95c" in out  # the example tag of the default scheme


def test_config_check_reports_each_problem_on_one_line(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    (project / "tagtrail.yaml").write_text("image: ghcr.io/o/{app}\ndeploy:\n  brnch: main\n")
    code, out, err = run(capsys, "config", "check")
    assert code == 1
    assert out == ""
    assert err.strip() == "error: tagtrail.yaml:3:3: deploy.brnch: unknown key; did you mean 'branch'?"


def test_config_check_json(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    code, out, _ = run(capsys, "config", "check", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["valid"] is True
    assert data["config"]["deploy"]["pins"] == {"web": "main.20251014-050954.185c95c"}
    (project / "tagtrail.yaml").write_text("image: 7\n")
    code, out, _ = run(capsys, "config", "check", "--json")
    assert code == 1
    assert json.loads(out) == {
        "valid": False,
        "errors": [
            {
                "path": "tagtrail.yaml",
                "line": 1,
                "column": 8,
                "field": "image",
                "message": "Input should be a valid string",
            }
        ],
    }


def test_config_check_warns_about_a_pin_outside_the_scheme(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    (project / "tagtrail.yaml").write_text("image: ghcr.io/o/{app}\ndeploy:\n  pins:\n    web: latest\n")
    code, _, err = run(capsys, "config", "check")
    assert code == 0
    assert "warning: deploy.pins.web: 'latest' does not match the scheme" in err


def test_global_config_option_and_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere" / "tt.yaml"
    other.parent.mkdir()
    other.write_text('image: ghcr.io/o/{app}\nscheme: "{{sha}}-{{branch}}"\n')
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "--config", str(other), "config", "check", "--json")
    assert code == 0
    assert json.loads(out)["config"]["scheme"] == "{{sha}}-{{branch}}"
    monkeypatch.setenv("TAGTRAIL_CONFIG", str(other))
    code, out, _ = run(capsys, "config", "check", "--json")
    assert json.loads(out)["config"]["scheme"] == "{{sha}}-{{branch}}"


def test_no_config_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "config", "check")
    assert code == 1
    assert err.count("\n") == 1
    assert "no tagtrail.yaml" in err
    assert "--config PATH" in err


def test_config_schema_is_json_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "Config"
    assert "description" in schema["properties"]["image"]
    code, out, _ = run(capsys, "config", "schema", "--markdown")
    assert out == markdown_table()
    code, out, _ = run(capsys, "config", "schema", "--table")
    assert "deploy.git.then" in out


def test_tag_with_explicit_fields_needs_no_repository(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out, _ = run(
        capsys, "tag", "--branch", "main", "--sha", "185c95c0d0a39b4d", "--time", "2025-10-14T05:10:38Z"
    )
    assert (code, out) == (0, "main.20251014-051038.185c95c\n")
    code, out, _ = run(
        capsys,
        "tag",
        "--branch",
        "main",
        "--sha",
        "185c95c0d0a39b4d",
        "--time",
        "2025-10-14T07:10:38+02:00",
        "--json",
    )
    assert json.loads(out) == {
        "tag": "main.20251014-051038.185c95c",
        "branch": "main",
        "sha": "185c95c0d0a39b4d",
        "time": "2025-10-14T07:10:38+02:00",
        "scheme": "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}",
    }


def test_tag_outside_a_repository_says_so(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    code, out, err = run(capsys, "tag")
    assert code == 1
    assert out == ""
    assert "is not inside a git repository" in err


def test_a_bad_time_is_one_line(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    code, _, err = run(capsys, "tag", "--branch", "main", "--sha", "185c95c0", "--time", "yesterday")
    assert code == 1
    assert err.strip() == "error: --time 'yesterday' is not an ISO 8601 time such as 2024-02-18T10:15:00Z"


def test_tag_parse_json_has_one_object_per_tag(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    code, out, _ = run(capsys, "tag", "parse", "main.20251014-051038.185c95c", "latest", "--json")
    assert code == 1  # one tag does not match
    first, second = json.loads(out)
    assert first == {
        "tag": "main.20251014-051038.185c95c",
        "matches": True,
        "branch": "main",
        "sha": "185c95c",
        "time": "2025-10-14T05:10:38Z",
        "ambiguous": False,
        "instants": ["2025-10-14T05:10:38Z"],
        "reason": None,
        "code": None,
    }
    assert second["matches"] is False
    assert second["code"] == "other-scheme"
    assert "does not match the scheme" in second["reason"]


def test_tag_parse_reports_both_instants_of_an_ambiguous_time(capsys: pytest.CaptureFixture[str]) -> None:
    scheme = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='America/Los_Angeles'}}.{{sha}}"
    code, out, _ = run(capsys, "tag", "parse", "--scheme", scheme, "main.20241103-013000.185c95c", "--json")
    assert code == 0
    [record] = json.loads(out)
    assert record["ambiguous"] is True
    assert record["time"] is None
    assert record["instants"] == ["2024-11-03T08:30:00Z", "2024-11-03T09:30:00Z"]


def test_tag_parse_table(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    code, out, _ = run(capsys, "tag", "parse", "feature.v2.20240218-101500.abc1234")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["TAG", "BRANCH", "SHA", "TIME", "(UTC)", "NOTE"]
    assert row.split() == [
        "feature.v2.20240218-101500.abc1234",
        "feature.v2",
        "abc1234",
        "2024-02-18",
        "10:15:00",
    ]


def test_an_unexpected_exception_is_reported_as_a_bug(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr("tagtrail.cli.config_cmd.config_warnings", broken)
    code, _, err = run(capsys, "config", "check")
    assert code == 70
    assert "internal error: KeyError" in err
    assert "this is a bug" in err
    assert "Traceback" not in err


def test_demo_without_its_scaffolding_says_how_to_get_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo's scaffolding is a package beside the product: where an install lacks it, `tagtrail demo`
    says so in one line instead of a traceback (None in sys.modules stands for a package not installed)."""
    monkeypatch.setitem(sys.modules, "tagtrail_demo", None)
    code, _, err = run(capsys, "demo", "--workdir", str(tmp_path))
    assert code != 0
    assert "tagtrail demo needs the tagtrail_demo package" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
