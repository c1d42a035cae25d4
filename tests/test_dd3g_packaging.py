"""Packaging proof: the wheels of gs3d-core, gs-nets, gs-encoders, gs-losses, gs-priors and
gs-method-dd3g, installed into a fresh virtualenv as a downstream project gets them, list the
``dd3g`` method and run image -> Gaussians (``--preset tiny``) from the CLI."""

from __future__ import annotations

import pytest
from isolated import internal_requirements, listed_and_generated, plugin_env, ply_count

INTERNAL = {"gs3d-core", "gs-nets", "gs-encoders", "gs-losses", "gs-priors"}


@pytest.fixture(scope="module")
def dd3g_env(tmp_path_factory):
    return plugin_env(
        tmp_path_factory.mktemp("dd3g-isolated"),
        "gs-method-dd3g",
        ("gs-core", "gs-nets", "gs-encoders", "gs-losses", "gs-priors"),
    )


def test_wheel_is_publishable(dd3g_env):
    internal = internal_requirements(dd3g_env[1], INTERNAL)
    # The ImageDream teacher's guidance lives behind gs-losses' `guidance` extra.
    assert any(r.split()[1].startswith("gs-losses[guidance]") for r in internal), internal


def test_installed_plugin_lists_and_generates(dd3g_env, tmp_path):
    env, _ = dd3g_env
    result = listed_and_generated(env, "dd3g", tmp_path)
    assert result["num_gaussians"] > 0 and result["num_faces"] is None
    assert "pepd" in result["timings_s"]
    assert ply_count(env, tmp_path / "out.ply") == result["num_gaussians"]
