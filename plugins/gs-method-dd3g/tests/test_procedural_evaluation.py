"""The procedural evaluation: ring12 targets at elevation 0, inputs at a hidden elevation."""

from __future__ import annotations

import pytest
import torch

from gs_method_dd3g import DD3G, DD3GConfig
from gs_method_dd3g.procedural_evaluation import (
    evaluate,
    input_elevations,
    make_objects,
    object_views,
    ring12_prediction,
)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """Two objects rendered twice with one seed: rings at elevation 0 and at hidden ones."""
    root = tmp_path_factory.mktemp("eval")
    flat = make_objects(root / "flat", 2, 32, 7, "test")
    tilted = make_objects(root / "tilted", 2, 32, 7, "test", (-25.0, 25.0))
    return flat, tilted


def test_hidden_elevation_inputs_show_the_same_object_from_the_same_azimuth(worlds):
    flat, tilted = worlds
    el = input_elevations(tilted)
    assert torch.equal(input_elevations(flat), torch.zeros(2))
    assert el.abs().max() <= 25 and el.abs().min() > 0
    for a, b in zip(object_views(flat), object_views(tilted), strict=True):
        assert a.object_id == b.object_id
        fa, fb = a.record.frames[0].extras, b.record.frames[0].extras
        assert fa["azimuth"] == pytest.approx(fb["azimuth"])
        assert (a.rgba[0] != b.rgba[0]).any()  # seen from another elevation


def test_a_hidden_elevation_input_changes_the_prediction_not_the_targets(worlds):
    flat, tilted = worlds
    model = DD3G(DD3GConfig.preset("tiny")).eval()
    views = next(object_views(flat))
    same = ring12_prediction(model, views, 0)
    again = ring12_prediction(model, views, 0, views)  # the input's own ring: unchanged
    torch.testing.assert_close(same.pred, again.pred)
    hidden = ring12_prediction(model, views, 0, next(object_views(tilted)))
    assert torch.equal(hidden.target, same.target)
    assert not torch.allclose(hidden.pred, same.pred)
    scores = evaluate(model, flat, 1, tilted)
    assert len(scores["objects"]) == 2 and scores["psnr"] != evaluate(model, flat, 1)["psnr"]
    other = next(iter(list(object_views(tilted))[1:]))
    with pytest.raises(ValueError, match="input_views"):
        ring12_prediction(model, views, 0, other)
