"""A command imports only what it runs (issue 15): each light command is run in a fresh interpreter and the
modules it loaded are checked. How long start-up takes is measured by `./scripts/bench cli`, not here."""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import tagtrail
from tagtrail.cli import serve_cmd, startup
from tagtrail.serve.controller.snapshot import Broadcast

SCHEME = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
_PROBE = (
    "import json, sys\n"
    "from tagtrail.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    "sys.stderr.write(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
)


def _modules(args: list[str], cwd: Path) -> set[str]:
    # without coverage's subprocess measurement (COVERAGE_PROCESS_CONFIG, set by the test command's --cov):
    # coverage itself loads sqlite3 and more into every process it measures
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=cwd, check=False, env=env
    )
    report = json.loads(done.stderr.splitlines()[-1])
    assert report["code"] == 0, done.stderr
    return set(report["modules"])


def _loaded(modules: set[str], *names: str) -> list[str]:
    return [n for n in names if n in modules]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # the search for tagtrail.yaml stops at the top of a repository
    (tmp_path / "tagtrail.yaml").write_text("image: ghcr.io/acme/homelab/{app}\n")
    (tmp_path / "apps" / "web").mkdir(parents=True)
    (tmp_path / "apps" / "web" / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def test_the_version_is_the_one_installed() -> None:
    """`__version__` is written once, in tagtrail/__init__.py, which hatchling reads for the package."""
    assert tagtrail.__version__ == importlib.metadata.version("tagtrail")


def test_version_imports_neither_the_cli_framework_nor_the_config(project: Path) -> None:
    modules = _modules(["--version"], project)
    assert _loaded(modules, "typer", "rich", "pydantic", "tagtrail.config", "tagtrail.domain.scheme") == []


def test_tag_parse_with_a_scheme_does_not_load_the_config(project: Path) -> None:
    modules = _modules(
        ["tag", "parse", "--scheme", SCHEME, "--json", "main.20251014-051038.185c95c"], project
    )
    assert "tagtrail.domain.scheme" in modules
    assert _loaded(modules, "tagtrail.config", "ruamel.yaml", "httpx", "rich", "cryptography") == []


@pytest.mark.parametrize("args", [["apps", "--json"], ["config", "check", "--json"]])
def test_commands_that_read_the_config_load_no_network_or_crypto_code(project: Path, args: list[str]) -> None:
    modules = _modules(args, project)
    assert "tagtrail.config" in modules
    never = (
        "httpx",
        "tagtrail.adapters.registry",
        "cryptography",
        "starlette",
        "sqlite3",
        "rich",
    )  # JSON: no rich
    assert _loaded(modules, *never) == []


def test_a_config_with_a_key_still_checks_it(tmp_path: Path) -> None:
    """The key check imports cryptography only when a key is there, and still refuses a bad one."""
    config = tmp_path / "tagtrail.yaml"
    config.write_text("image: ghcr.io/acme/homelab/{app}\ndeploy:\n  verify:\n    keys:\n      - not a key\n")
    done = subprocess.run(
        [sys.executable, "-m", "tagtrail", "-c", str(config), "config", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "not a PEM public key" in done.stderr
    assert "Traceback" not in done.stderr


def test_garbage_collection_is_paused_for_imports_only_and_only_in_tagtrails_own_process(
    project: Path,
) -> None:
    """The console script pauses collections while it imports and freezes what they made; the command
    itself (tagtrail serve runs for months) runs with collections on. A host calling main() keeps its GC."""
    probe = (
        "import gc, json, sys\n"
        "from tagtrail.cli import main\n"
        "frozen = gc.get_freeze_count()\n"
        "hosted = main(['tag', 'parse', '--scheme', sys.argv[1], '--json', 'main.20251014-051038.185c95c'])\n"
        "hosted_frozen = gc.get_freeze_count()\n"
        "sys.argv = ['tagtrail', 'config', 'check', '--json']\n"
        "own = main()\n"
        "sys.stderr.write(json.dumps([hosted, hosted_frozen - frozen, own, gc.isenabled(), gc.get_freeze_count()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, SCHEME], capture_output=True, text=True, cwd=project, check=False
    )
    hosted, hosted_frozen, own, enabled, frozen = json.loads(done.stderr.splitlines()[-1])
    assert (hosted, hosted_frozen) == (0, 0)
    assert (own, enabled) == (0, True)
    assert frozen > 10_000  # typer's, pydantic's and the config's objects


def test_the_deploy_commands_load_no_kubernetes_client_rich_or_crypto_until_needed() -> None:
    """plan, deploy, status and history import lightkube only where `kubernetes:` or `deploy.kubernetes`
    makes a Cluster (the Kubernetes tests cover that side), rich only to print a table (not for
    `plan --json`), and cryptography only to read a key (deploy.verify.keys)."""
    probe = (
        "import json, sys\n"
        "sys.modules['httpx._main'] = None\n"  # as tagtrail's own process does
        "import tagtrail.cli.deploy_cmd\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout))
    assert "tagtrail.reconcile" in modules
    never = (
        "lightkube",
        "tagtrail.adapters.kube.cluster",
        "tagtrail.targets.kubernetes",
        "rich",
        "cryptography",
    )
    assert _loaded(modules, *never) == []


def test_tagtrails_own_process_skips_httpxs_command_line_and_pydantics_plugin_scan(project: Path) -> None:
    """As the console script runs (main() with no arguments): httpx would import click, rich's console and
    pygments for its own CLI, and pydantic would read every installed package's entry points; a host that
    calls main(args) keeps both as they were."""
    probe = (
        "import json, os, sys\n"
        "from tagtrail.cli import main\n"
        "hosted = main(['config', 'check', '--json'])\n"
        "before = ('httpx._main' in sys.modules, os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n"
        "sys.argv = ['tagtrail', 'config', 'check', '--json']\n"
        "own = main()\n"
        "import httpx\n"
        "after = (sys.modules.get('httpx._main', 'absent'), os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n"
        "sys.stderr.write(json.dumps([hosted, before, own, after, 'pygments' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=project, check=False, env=env
    )
    hosted, before, own, after, pygments = json.loads(done.stderr.splitlines()[-1])
    assert (hosted, before) == (0, [False, None])
    assert (own, after, pygments) == (0, [None, "__all__"], False)
    stub = "import sys; sys.modules['httpx._main'] = None; import httpx; httpx.main()"
    shown = subprocess.run([sys.executable, "-c", stub], capture_output=True, text=True, check=False)
    assert "could not run" in shown.stdout  # httpx's stub stands in for its command line


def test_serve_freezes_what_start_up_made_once_every_app_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tagtrail serve` freezes what lives from start-up out of later garbage collections after its first
    reconcile that leaves it ready, not before (the first read of every app is long-lived too) and once;
    a host running tagtrail in-process keeps its own collector untouched."""
    assert gc.get_freeze_count() == 0
    assert startup.settle() == 0  # in-process (pytest is the host): nothing frozen

    async def scenario() -> list[int]:
        controller = SimpleNamespace(live=Broadcast(), ready=(False, "no reconcile yet"))
        settling = asyncio.create_task(serve_cmd._settle(controller))
        seen = []
        for ready in (False, True):
            await asyncio.sleep(0)
            controller.ready = (ready, "")
            controller.live.publish("reconciled")
            await asyncio.sleep(0)
            seen.append(gc.get_freeze_count())
        await settling
        return seen

    monkeypatch.setattr(startup.Process, "own", True)
    monkeypatch.setattr(startup.Process, "settled", False)
    try:
        before_ready, after_ready = asyncio.run(scenario())
        assert before_ready == 0
        assert after_ready > 10_000  # the interpreter and the modules tests imported
        assert startup.settle() <= after_ready  # once: a second call freezes nothing new
    finally:
        gc.unfreeze()
