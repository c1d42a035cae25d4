"""gs_core.testing's pytest plugin: the ``offline_hub`` fixture every package's tests share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_offline_hub_cuts_the_hub_and_empties_the_cache(offline_hub, tmp_path):
    import huggingface_hub.constants as hf_constants

    from gs_core.errors import WeightsNotFoundError
    from gs_core.hub import resolve_pretrained

    assert offline_hub == tmp_path
    assert os.environ["HF_HUB_OFFLINE"] == "1" and hf_constants.HF_HUB_OFFLINE is True
    assert Path(hf_constants.HF_HUB_CACHE) == tmp_path / "hf-cache"
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_pretrained("nobody/not-cached")
