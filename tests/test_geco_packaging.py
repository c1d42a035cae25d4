"""Packaging proof: the wheels of gs3d-core, gs-nets, gs-losses, gs-priors and gs-method-geco,
installed into a fresh virtualenv as a downstream project gets them, list the ``geco`` method and
run image -> six views -> Gaussians (``--preset tiny``) from the CLI."""

from __future__ import annotations

import pytest
from isolated import internal_requirements, listed_and_generated, plugin_env, ply_count


@pytest.fixture(scope="module")
def geco_env(tmp_path_factory):
    return plugin_env(
        tmp_path_factory.mktemp("geco-isolated"),
        "gs-method-geco",
        ("gs-core", "gs-nets", "gs-losses", "gs-priors"),
    )


def test_wheel_is_publishable(geco_env):
    internal = internal_requirements(
        geco_env[1], {"gs3d-core", "gs-nets", "gs-losses", "gs-priors"}
    )
    # SDS / VSD live behind gs-losses' `guidance` extra; without it VSD has no prior to run over.
    assert any(r.split()[1].startswith("gs-losses[guidance]") for r in internal), internal


def test_installed_plugin_lists_and_generates(geco_env, tmp_path):
    env, _ = geco_env
    result = listed_and_generated(env, "geco", tmp_path)
    assert result["num_gaussians"] > 0 and result["num_faces"] is None
    assert set(result["timings_s"]) >= {"generator", "reconstructor"}
    assert ply_count(env, tmp_path / "out.ply") == result["num_gaussians"]
