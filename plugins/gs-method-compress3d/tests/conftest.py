"""Shared fixtures of the Compress3D plugin tests: a tiny procedural dataset, generated once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    from gs_core.procedural import ProceduralConfig, generate

    root = tmp_path_factory.mktemp("compress3d-data") / "tiny"
    cfg = ProceduralConfig.preset("tiny", objects=4, views=4, split="train")
    generate(cfg, root, workers=0, progress=False)
    return root
