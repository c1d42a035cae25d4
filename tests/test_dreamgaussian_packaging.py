"""Packaging proof: the wheels of gs3d-core, gs-losses, gs-priors and gs-method-dreamgaussian,
installed with the plugin's ``mesh`` extra into a fresh virtualenv as a downstream project gets
them, list the ``dreamgaussian`` method and run both stages (``--preset tiny``) from the CLI."""

from __future__ import annotations

import pytest
from isolated import internal_requirements, listed_and_generated, plugin_env


@pytest.fixture(scope="module")
def dg_env(tmp_path_factory):
    return plugin_env(
        tmp_path_factory.mktemp("dreamgaussian-isolated"),
        "gs-method-dreamgaussian",
        ("gs-core", "gs-losses", "gs-priors"),
        extra="[mesh]",
    )


def test_wheel_is_publishable(dg_env):
    internal = internal_requirements(dg_env[1], {"gs3d-core", "gs-losses", "gs-priors"})
    assert any("extra == 'mesh'" in r for r in internal)


def test_installed_plugin_lists_and_generates(dg_env, tmp_path):
    env, _ = dg_env
    glb = tmp_path / "out.glb"
    result = listed_and_generated(env, "dreamgaussian", tmp_path, "--mesh", str(glb))
    assert result["num_gaussians"] > 0 and result["num_faces"] > 0
    assert set(result["timings_s"]) >= {"stage1", "mesh", "stage2"}
    assert (tmp_path / "out.ply").stat().st_size > 0 and glb.stat().st_size > 0
