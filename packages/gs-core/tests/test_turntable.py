"""``gs_core.rendering.turntable``: scene framing, orbit renders and turntable files."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from gs_core import Gaussians
from gs_core.errors import GS3DError
from gs_core.rendering import BackendUnavailableError
from gs_core.rendering.turntable import (
    check_turntable_path,
    frame_scene,
    orbit_azimuths,
    render_orbit,
    write_turntable,
)


def _sphere(offset=(0.0, 0.0, 0.0), n=300) -> Gaussians:
    g = torch.Generator().manual_seed(0)
    d = torch.randn(n, 3, generator=g)
    d = d / d.norm(dim=-1, keepdim=True) * 0.5 + torch.tensor(offset)
    red = torch.tensor([[0.9, 0.1, 0.1]]).expand(n, 3)
    return Gaussians.from_colors(d, red, 0.05, 0.9)


def test_frame_scene_fits_bounding_sphere():
    means = torch.randn(2000, 3) * 0.1 + torch.tensor([1.0, 2.0, 3.0])
    g = Gaussians.from_colors(means, torch.rand(2000, 3), 0.01, 0.5)
    center, dist = frame_scene(g, 49.1)
    assert np.allclose(center, (1.0, 2.0, 3.0), atol=0.05)
    assert 0.5 < dist < 2.0


def test_frame_scene_ignores_stray_splats():
    g = _sphere()
    stray = Gaussians.from_colors(torch.tensor([[50.0, 0.0, 0.0]]), torch.ones(1, 3), 0.05, 0.9)
    both = Gaussians.concat([g, stray])
    c1, d1 = frame_scene(g)
    c2, d2 = frame_scene(both)
    assert np.allclose(c1, c2, atol=0.05) and d2 == pytest.approx(d1, rel=0.1)


def test_frame_scene_keeps_thin_extremities():
    # a snowman's hat: 2 of 302 splats, above the 99th percentile, 1.4x the body's radius
    body = _sphere()
    hat = Gaussians.from_colors(torch.tensor([[0.0, 0.0, 0.7]] * 2), torch.ones(2, 3), 0.05, 0.9)
    c1, d1 = frame_scene(body)
    c2, d2 = frame_scene(Gaussians.concat([body, hat]))
    # the bounding box now spans z in [-0.5, 0.7]: centre z 0.1, radius about 0.6 + margin
    assert c2[2] == pytest.approx(0.1, abs=0.02)
    assert d2 == pytest.approx(d1 * (0.6 + 0.1) / (0.5 + 0.1), rel=0.05)


def test_orbit_azimuths():
    assert orbit_azimuths(4) == [0.0, 90.0, 180.0, 270.0]


def test_render_orbit_centres_an_off_centre_scene_and_reports_progress():
    g = _sphere(offset=(3.0, -1.0, 2.0))
    seen = []
    images = render_orbit(
        g,
        orbit_azimuths(5),
        resolution=24,
        background=(0.0, 0.0, 1.0),
        chunk=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(images) == 5 and images[0].shape == (24, 24, 3)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    for im in images:
        assert im[10:14, 10:14, 0].mean() > 0.6  # the red object in the middle
        assert im[:2, :2, 2].min() > 0.95 and im[:2, :2, 0].max() < 0.05  # blue background


def test_render_orbit_honours_the_backend():
    g = _sphere()
    torch_imgs = render_orbit(g, [0.0], resolution=16, backend="torch")
    auto_imgs = render_orbit(g, [0.0], resolution=16, backend="auto")
    # auto is numba (or torch) on the CPU: the same picture up to a rounding step of 8 bits
    np.testing.assert_allclose(torch_imgs[0], auto_imgs[0], atol=1)
    with pytest.raises(BackendUnavailableError):
        render_orbit(g, [0.0], resolution=16, backend="gsplat")


def test_write_turntable_gif(tmp_path):
    path = write_turntable(_sphere(), tmp_path / "spin.gif", frames=3, resolution=20)
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (3, 20, 20)
    with pytest.raises(GS3DError, match="exists"):
        write_turntable(_sphere(), path, frames=3, resolution=20)
    write_turntable(_sphere(), path, frames=2, resolution=20, overwrite=True)
    assert iio.imread(path, index=None).shape[0] == 2


def test_turntable_path_checks(tmp_path):
    with pytest.raises(GS3DError, match=r"x.avi: expected a .gif or .mp4 file name"):
        check_turntable_path(tmp_path / "x.avi")
    with pytest.raises(GS3DError, match="positive camera distance"):
        render_orbit(_sphere(), [0.0], resolution=8, distance=-1.0)
