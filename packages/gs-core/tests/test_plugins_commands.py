"""Plugin subcommands (``gs3d.commands`` entry points + ``gs3d_register_commands``) and the
cost of ``gs3d --help`` / ``gs3d --version``: no torch, no plugin imported.

The plugins here are real distributions to importlib.metadata: ``*.dist-info`` folders on
``PYTHONPATH`` of a subprocess, so the CLI reads them exactly as it reads installed wheels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gs_core import __version__

GOOD = '''
import typer
from gs_core.plugins.hookspecs import hookimpl

@hookimpl
def gs3d_register_commands(cli):
    @cli.command("hello-gs3d")
    def hello(name: str = typer.Option("world", help="who to greet")):
        """Greet someone (a plugin command)."""
        typer.echo(f"hello {name} from a plugin")

    @cli.command("info")
    def info():
        typer.echo("plugin info must never run")
'''


def _dist(root: Path, name: str, version: str, commands: dict[str, str]) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test plugin\n"
    )
    lines = "\n".join(f"{k} = {v}" for k, v in commands.items())
    (info / "entry_points.txt").write_text(f"[gs3d.commands]\n{lines}\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "gs3d_fake_cmds.py").write_text(textwrap.dedent(GOOD))
    (root / "gs3d_fake_broken.py").write_text("raise ImportError('broken on purpose')\n")
    (root / "gs3d_fake_other.py").write_text(textwrap.dedent(GOOD).replace("hello-gs3d", "x"))
    _dist(
        root,
        "gs3d-fake-cmds",
        "1.2.3",
        {
            "hello-gs3d": "gs3d_fake_cmds",
            "info": "gs3d_fake_cmds",  # a built-in name: refused
            "ghost": "gs3d_fake_cmds",  # declared, but the hook never adds it
            "broken-cmd": "gs3d_fake_broken",
            "twice": "gs3d_fake_cmds",
        },
    )
    _dist(root, "gs3d-fake-other", "0.0.1", {"twice": "gs3d_fake_other"})
    return root


def _run(site: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120
    )


def _gs3d(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    code = f"from gs_core.cli.main import main; main({list(args)!r})"
    return _run(site, code, COLUMNS="200", **env)


HELP_PROBE = """
import sys
from gs_core.cli.main import main
try:
    main([{args}])
except SystemExit:
    pass
heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'gs3d_fake_cmds', 'gs3d_fake_broken', 'gs_method_agg', 'gs_priors', 'gs_losses', 'gs_nets', 'gs_encoders')]
print('HEAVY', heavy)
"""


def test_help_imports_no_torch_nor_plugin_and_lists_plugin_commands(site):
    r = _run(site, HELP_PROBE.format(args="'--help'"), COLUMNS="200")
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    assert "Plugin commands" in r.stdout
    assert "hello-gs3d" in r.stdout and "From the plugin gs3d-fake-cmds 1.2.3" in r.stdout
    assert "broken-cmd" in r.stdout  # listed from metadata; it breaks only when run
    assert r.stdout.count(" info ") == 1  # the built-in, not the plugin's


def test_version_prints_the_core_version_without_torch(site):
    r = _run(site, HELP_PROBE.format(args="'--version'"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"gs3d {__version__}"
    assert "HEAVY []" in r.stdout


def test_plugin_command_runs_and_has_its_own_help(site):
    r = _gs3d(site, "hello-gs3d", "--name", "gs3d")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hello gs3d from a plugin"
    r = _gs3d(site, "hello-gs3d", "--help")
    assert r.returncode == 0 and "who to greet" in r.stdout


def test_builtin_command_wins_over_a_plugin_command(site):
    r = _gs3d(site, "info", "--help")
    assert r.returncode == 0 and "plugin info" not in r.stdout
    assert "Gaussians" in r.stdout  # the built-in's help


def test_broken_plugin_command_is_one_clear_line_and_breaks_nothing_else(site):
    r = _gs3d(site, "broken-cmd")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    line = " ".join(r.stderr.split())
    assert (
        "error: command 'broken-cmd' from plugin gs3d-fake-cmds 1.2.3 failed to load: "
        "ImportError: broken on purpose" in line
    )
    assert _gs3d(site, "hello-gs3d").returncode == 0
    assert _gs3d(site, "plugins", "--json").returncode == 0


def test_declared_but_missing_and_duplicate_commands_are_refused(site):
    r = _gs3d(site, "ghost")
    assert r.returncode == 2
    msg = " ".join(r.stderr.split())
    assert "plugin gs3d-fake-cmds 1.2.3 declares the command 'ghost'" in msg
    assert "hook added hello-gs3d, info" in msg
    r = _gs3d(site, "twice")
    msg = " ".join(r.stderr.split())
    assert r.returncode == 2
    assert (
        "duplicate command name 'twice': declared by both gs3d-fake-cmds and gs3d-fake-other" in msg
    )


def test_disabled_plugin_command_says_so(site):
    r = _gs3d(site, "hello-gs3d", GS3D_DISABLE_PLUGINS="gs3d-fake-cmds")
    assert r.returncode == 2
    assert "is disabled by GS3D_DISABLE_PLUGINS" in " ".join(r.stderr.split())
    r = _run(site, HELP_PROBE.format(args="'--help'"), GS3D_DISABLE_PLUGINS="gs3d-fake-cmds")
    assert "hello-gs3d" not in r.stdout


def test_plugins_listing_reports_commands(site):
    r = _gs3d(site, "plugins", "--json")
    assert r.returncode == 0, r.stderr
    rows = {(c["name"], c["distribution"]): c for c in json.loads(r.stdout)["commands"]}
    assert rows[("hello-gs3d", "gs3d-fake-cmds")]["status"] == "installed (not imported)"
    assert rows[("info", "gs3d-fake-cmds")]["status"] == "refused"
    assert "built-in" in rows[("info", "gs3d-fake-cmds")]["error"]
    assert rows[("twice", "gs3d-fake-other")]["status"] == "refused"
    checked = json.loads(_gs3d(site, "plugins", "--json", "--check").stdout)["commands"]
    status = {(c["name"], c["distribution"]): c for c in checked}
    assert status[("hello-gs3d", "gs3d-fake-cmds")]["status"] == "loaded"
    assert status[("broken-cmd", "gs3d-fake-cmds")]["status"] == "failed"
    assert "broken on purpose" in status[("broken-cmd", "gs3d-fake-cmds")]["error"]
    assert status[("ghost", "gs3d-fake-cmds")]["status"] == "failed"
