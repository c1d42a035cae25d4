"""Packaging proof: the wheels of gs3d-core, gs-nets, gs-encoders, gs-losses, gs-priors and
gs-method-dd3g, installed into a fresh virtualenv as a downstream project gets them, list the
``dd3g`` method and run the PEPD generator (``--preset tiny``) from the CLI."""

from __future__ import annotations

import json
import zipfile

import pytest
from isolated import ROOT, IsolatedEnv

PACKAGES = ("gs-core", "gs-nets", "gs-encoders", "gs-losses", "gs-priors")


@pytest.fixture(scope="module")
def dd3g_env(tmp_path_factory) -> tuple[IsolatedEnv, object]:
    env = IsolatedEnv(tmp_path_factory.mktemp("dd3g-isolated"))
    wheels = [env.build(ROOT / "packages" / p) for p in PACKAGES]
    plugin = env.build(ROOT / "plugins" / "gs-method-dd3g")
    env.install(*wheels, plugin)
    return env, plugin


def test_wheel_is_publishable(dd3g_env):
    _, plugin = dd3g_env
    z = zipfile.ZipFile(plugin)
    names = z.namelist()
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith("LICENSE") and ".dist-info/" in n for n in names)
    assert "License-Expression: Apache-2.0" in meta and "Version: 0.1.0" in meta
    requires = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    internal = [r for r in requires if r.split()[1].startswith(("gs3d-core", "gs-"))]
    names = {r.split()[1].split("[")[0].split("<")[0].split(">")[0] for r in internal}
    assert names == {"gs3d-core", "gs-nets", "gs-encoders", "gs-losses", "gs-priors"}
    assert all(">=0.1" in r and "<0.2" in r for r in internal), internal
    # The ImageDream teacher's guidance lives behind gs-losses' `guidance` extra.
    assert any(r.split()[1].startswith("gs-losses[guidance]") for r in internal), internal


def test_installed_plugin_lists_and_generates(dd3g_env, tmp_path):
    env, _ = dd3g_env
    listing = json.loads(env.run(env.bin("gs3d"), "plugins", "--json").stdout)
    row = next(p for p in listing["plugins"] if p["name"] == "dd3g")
    assert row["distribution"] == "gs-method-dd3g" and row["version"] == "0.1.0"
    image = tmp_path / "in.png"
    draw = (
        "from gs_core.imaging import save_image; from gs_core.testing import tiny_rgba_images; "
        f"save_image('{image}', tiny_rgba_images(1, 32)[0].permute(1, 2, 0).numpy())"
    )
    env.run(env.python, "-c", draw)
    out = tmp_path / "out.ply"
    r = env.run(
        env.bin("gs3d"), "generate", str(image), "--method", "dd3g", "-o", str(out),
        "--preset", "tiny", "--json", cwd=tmp_path,
    )  # fmt: skip
    result = json.loads(r.stdout)
    assert result["num_gaussians"] > 0 and result["num_faces"] is None
    assert "pepd" in result["timings_s"]
    r = env.run(
        env.python, "-c", f"from gs_core.io import load_ply; print(load_ply('{out}').num_gaussians)"
    )
    assert int(r.stdout) == result["num_gaussians"]
