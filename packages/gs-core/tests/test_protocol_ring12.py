"""The ``ring12`` protocol (DD3G Sec. IV-B: 12 views around the object)."""

from __future__ import annotations

import numpy as np
import pytest

from gs_core.errors import GS3DError
from gs_core.evaluation.protocols import (
    PROTOCOLS,
    RING12,
    RING15,
    protocol_views,
    select_views,
)


def _centers(azimuths, elevation=0.0, radius=1.5):
    az, el = np.radians(np.asarray(azimuths, float)), np.radians(elevation)
    return np.stack(
        [
            radius * np.cos(el) * np.sin(az),
            np.full_like(az, radius * np.sin(el)),
            radius * np.cos(el) * np.cos(az),
        ],
        -1,
    )


def test_ring12_views():
    assert "ring12" in PROTOCOLS
    assert len(RING12) == 12
    assert [a for a, _ in RING12] == [30.0 * k for k in range(12)]
    assert all(e == 0.0 for _, e in RING12)
    assert protocol_views("ring12") == {"ring12": RING12}
    # the other protocols are unchanged
    assert protocol_views("gso") == {
        "ring15": RING15,
        "zero123pp": protocol_views("zero123pp")["zero123pp"],
    }


def test_ring12_selects_from_a_24_view_ring_relative_to_the_input():
    # a ring every 15 degrees starting at 40 (the input): ring12 is every other frame
    centers = _centers(40.0 + 15.0 * np.arange(24))
    sel = select_views(centers, "ring12", input_index=0)
    assert sel.input_index == 0
    assert sel.groups["ring12"][1:] == list(range(2, 24, 2))
    # the 0-degree view shares the input camera: the input frame itself is the only candidate
    assert sel.groups["ring12"][0] == 0


def test_ring12_names_the_missing_view():
    centers = _centers(24.0 * np.arange(15))  # a ring15 dataset lacks 30, 60, ...
    with pytest.raises(GS3DError, match="azimuth 30"):
        select_views(centers, "ring12", input_index=0, object_id="obj")
