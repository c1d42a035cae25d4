"""A third-party plugin installed as users install it: listed, loaded lazily, conformant, adding
a `gs3d` subcommand that `gs3d --help` lists without importing it (nor torch); broken and
duplicate plugins are reported without breaking the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from isolated import ROOT, IsolatedEnv

TEMPLATE = ROOT / "examples" / "plugin-template"


def make_plugin(
    root: Path, dist: str, module: str, ep_name: str, body: str, commands: tuple[str, ...] = ()
) -> Path:
    pkg = root / dist
    (pkg / "src" / module).mkdir(parents=True)
    (pkg / "src" / module / "__init__.py").write_text(textwrap.dedent(body))
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [project]
        name = "{dist}"
        version = "9.8.7"
        requires-python = ">=3.11"
        dependencies = ["gs3d-core"]
        [project.entry-points.gs3d]
        {ep_name} = "{module}"
        [build-system]
        requires = ["hatchling>=1.24"]
        build-backend = "hatchling.build"
        [tool.hatch.build.targets.wheel]
        packages = ["src/{module}"]
        """)
        + ('[project.entry-points."gs3d.commands"]\n' if commands else "")
        + "".join(f'{c} = "{module}"\n' for c in commands)
    )
    return pkg


def plugins_json(env: IsolatedEnv, *extra, rc: int = 0) -> dict:
    """``gs3d plugins --json`` (``--check`` exits 1 when a plugin failed)."""
    r = env.run(env.bin("gs3d"), "plugins", "--json", *extra, check=False)
    assert r.returncode == rc, r.stderr
    return json.loads(r.stdout)


def test_template_plugin_lifecycle(core_env: IsolatedEnv, tmp_path):
    env = core_env
    env.install(env.build(TEMPLATE))

    # listed from metadata, with its version, without importing it
    listing = plugins_json(env)
    row = next(p for p in listing["plugins"] if p["name"] == "pixel-cloud")
    assert row["distribution"] == "gs3d-pixel-cloud" and row["version"] == "0.1.0"
    assert row["status"] == "installed (not imported)"
    probe = (
        "import sys; from gs_core.plugins.registry import get_registry; r = get_registry(); "
        "r.entry_points(); assert 'gs3d_pixel_cloud' not in sys.modules; "
        "s = r.get_method('pixel-cloud'); assert 'gs3d_pixel_cloud' in sys.modules; print(s.distribution, s.version)"
    )
    assert env.run(env.python, "-c", probe).stdout.split() == ["gs3d-pixel-cloud", "0.1.0"]

    # its command is listed by `gs3d --help` from metadata alone: neither it nor torch is imported
    help_probe = (
        "import sys\nfrom gs_core.cli.main import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('IMPORTED', sorted(m for m in ('torch', 'gs3d_pixel_cloud') if m in sys.modules))\n"
    )
    r = env.run(env.python, "-c", help_probe, env={"COLUMNS": "200"})
    assert "pixel-cloud-info" in r.stdout and "IMPORTED []" in r.stdout
    assert env.run(env.bin("gs3d"), "--version").stdout.startswith("gs3d 0.")
    # ... and runs the method when invoked
    info = json.loads(
        env.run(env.bin("gs3d"), "pixel-cloud-info", "--preset", "tiny", "--json").stdout
    )
    assert info["gaussians_per_image"] == 16 * 16 and info["distribution"] == "gs3d-pixel-cloud"

    # the plugin's own tests, including gs-core's conformance suite, pass against the wheels
    r = env.run(
        env.python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(TEMPLATE / "tests"),
        cwd=tmp_path,
    )
    assert " passed" in r.stdout and "failed" not in r.stdout

    # a broken plugin is reported; everything else keeps working
    broken = make_plugin(tmp_path, "gs3d-broken-plugin", "gs3d_broken_plugin", "broken",
                         "raise ImportError('this plugin is broken on purpose')\n",
                         commands=("broken-cmd",))  # fmt: skip
    env.install(env.build(broken))
    checked = plugins_json(env, "--check", rc=1)
    rows = {p["name"]: p for p in checked["plugins"]}
    assert rows["broken"]["status"] == "failed"
    assert (
        "broken on purpose" in rows["broken"]["error"]
        and rows["broken"]["distribution"] == "gs3d-broken-plugin"
    )
    assert rows["pixel-cloud"]["status"] == "loaded" and "pixel-cloud" in checked["methods"]
    assert env.run(env.bin("gs3d"), "info", "--help").returncode == 0
    # its command fails alone, in one line naming the distribution
    r = env.run(env.bin("gs3d"), "broken-cmd", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "'broken-cmd' from plugin gs3d-broken-plugin 9.8.7 failed to load" in " ".join(
        r.stderr.split()
    )
    assert env.run(env.bin("gs3d"), "pixel-cloud-info", "--preset", "tiny").returncode == 0
    assert "broken-cmd" in env.run(env.bin("gs3d"), "--help", env={"COLUMNS": "200"}).stdout
    # ... and can be switched off, by its distribution's name in any PEP 503 spelling (its
    # plugin and its command): then --check passes
    off = json.loads(
        env.run(
            env.bin("gs3d"), "plugins", "--json", "--check",
            env={"GS3D_DISABLE_PLUGINS": "GS3D_Broken_Plugin"},
        ).stdout
    )  # fmt: skip
    assert {p["name"]: p for p in off["plugins"]}["broken"]["status"].startswith("disabled")

    # a second distribution registering the same method name is refused, naming both
    dup = make_plugin(tmp_path, "gs3d-dup-plugin", "gs3d_dup_plugin", "pixel-cloud", """
        from gs_core.plugins.hookspecs import hookimpl
        from gs_core.plugins.specs import MethodSpec
        from gs3d_pixel_cloud.config import PixelCloudConfig

        @hookimpl
        def gs3d_register_methods(register):
            register(MethodSpec("pixel-cloud", "copy", PixelCloudConfig, lambda c: None, "1.0"))
    """)  # fmt: skip
    env.install(env.build(dup))
    r = env.run(
        env.python,
        "-c",
        "from gs_core.plugins.registry import get_registry; get_registry().get_method('pixel-cloud')",
        check=False,
    )
    assert r.returncode != 0
    assert "duplicate method name 'pixel-cloud'" in r.stderr
    assert "gs3d-pixel-cloud" in r.stderr and "gs3d-dup-plugin" in r.stderr
    listing = plugins_json(env, "--check", rc=1)  # the listing itself still works
    assert any("duplicate" in p.get("error", "") for p in listing["plugins"])
