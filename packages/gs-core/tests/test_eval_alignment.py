"""Automatic azimuth alignment of a prediction to its input view."""

from __future__ import annotations

import pytest
import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError
from gs_core.evaluation.alignment import rotate_about_y, search_azimuth_offset
from gs_core.gaussians import Gaussians
from gs_core.rendering import render


def _object() -> Gaussians:
    g = torch.Generator().manual_seed(0)
    # An asymmetric object: a red blob in front-right, a blue one behind, a green one on top.
    centres = torch.tensor([[0.25, 0.0, 0.2], [-0.2, 0.0, -0.25], [0.0, 0.3, 0.0]])
    colours = torch.tensor([[1.0, 0.1, 0.1], [0.1, 0.1, 1.0], [0.1, 0.9, 0.1]])
    means = (centres[:, None] + 0.06 * torch.randn(3, 60, 3, generator=g)).reshape(-1, 3)
    return Gaussians.from_colors(
        means=means, colors=colours.repeat_interleave(60, 0), scales=0.05, opacities=0.9
    )


def test_rotate_about_y_adds_azimuth():
    a = Cameras.orbit([30.0], [10.0], radius=2.0)
    b = rotate_about_y(Cameras.orbit([0.0], [10.0], radius=2.0), 30.0)
    torch.testing.assert_close(a.viewmats, b.viewmats, atol=1e-5, rtol=0)


@pytest.mark.parametrize("true_offset", [37.0, -142.0])
def test_search_recovers_the_offset(true_offset):
    g = _object()
    size = 24

    def render_fn(cams):
        return render(g, cams, background=1.0, backend="torch").rgb

    front = Cameras.orbit([0.0], [0.0], radius=1.5, width=size, height=size)
    target = render_fn(Cameras.orbit([true_offset], [0.0], radius=1.5, width=size, height=size))[0]
    found = search_azimuth_offset(render_fn, front, target, coarse_step_deg=15.0, fine_step_deg=1.0)
    assert abs(found.offset_deg - true_offset) <= 1.0
    assert found.error < 1e-3
    assert len(found.candidates) > 24


def test_search_rejects_bad_input():
    cam = Cameras.orbit([0.0], [0.0], width=8, height=8)
    with pytest.raises(ValidationError, match="input_rgb"):
        search_azimuth_offset(lambda c: torch.zeros(1, 8, 8, 3), cam, torch.zeros(3, 8, 8))
