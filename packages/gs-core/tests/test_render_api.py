"""render(): modes, batching, meta, backgrounds, backend selection and bad input."""

from __future__ import annotations

import pytest
import torch

from gs_core import Cameras, Gaussians, RenderOutput, ValidationError, render
from gs_core.rendering import BackendUnavailableError


def scene(n=80, batch=(), seed=0, sh_degree=1, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(*batch, n, 3, generator=g) * 2 - 1) * 0.5
    quats = torch.randn(*batch, n, 4, generator=g)
    scales = torch.rand(*batch, n, 3, generator=g) * 0.1 + 0.03
    opac = torch.rand(*batch, n, generator=g) * 0.8 + 0.1
    sh = torch.randn(*batch, n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    ts = [means, quats, scales, opac, sh]
    if requires_grad:
        ts = [t.requires_grad_() for t in ts]
    return Gaussians(*ts), ts


CAMS = Cameras.orbit([0.0, 90.0, 180.0], [10.0, 20.0, -10.0], radius=2.5, width=20, height=16)


@pytest.mark.parametrize(
    "mode,has_rgb,has_depth",
    [
        ("RGB", True, False),
        ("RGB+D", True, True),
        ("RGB+ED", True, True),
        ("D", False, True),
        ("ED", False, True),
    ],
)
def test_modes_shapes(mode, has_rgb, has_depth):
    g, _ = scene()
    out = render(g, CAMS, mode=mode, backend="torch")
    assert isinstance(out, RenderOutput)
    assert out.alpha.shape == (3, 16, 20, 1)
    assert (out.rgb is not None) == has_rgb and (out.depth is not None) == has_depth
    if has_rgb:
        assert out.rgb.shape == (3, 16, 20, 3)
    if has_depth:
        assert out.depth.shape == (3, 16, 20, 1)
    m = out.meta
    assert m["means2d"].shape == (3, 80, 2) and m["radii"].shape == (3, 80, 2)
    assert (m["width"], m["height"], m["n_cameras"], m["backend"]) == (20, 16, 3, "torch")


def test_depth_modes_are_consistent():
    g, _ = scene()
    d = render(g, CAMS, mode="D", backend="torch")
    ed = render(g, CAMS, mode="ED", backend="torch")
    rgbd = render(g, CAMS, mode="RGB+D", backend="torch")
    rgb = render(g, CAMS, mode="RGB", backend="torch")
    assert torch.allclose(d.depth, rgbd.depth, atol=1e-6)
    assert torch.allclose(rgb.rgb, rgbd.rgb, atol=1e-6)
    covered = d.alpha > 0.05
    assert torch.allclose(ed.depth[covered], (d.depth / d.alpha)[covered], rtol=1e-5)
    # expected depth lies between the nearest and farthest camera-space depth
    z = rgbd.meta["depths"]
    assert float(ed.depth[covered].min()) >= float(z.min()) - 1e-4
    assert float(ed.depth[covered].max()) <= float(z.max()) + 1e-4


def test_batched_matches_per_item_and_shared_cameras_broadcast():
    g, _ = scene(batch=(2,))
    cams_b = Cameras(CAMS.viewmats.expand(2, 3, 4, 4), CAMS.Ks.expand(2, 3, 3, 3), 20, 16)
    out_b = render(g, cams_b, mode="RGB+ED", backend="torch", background=(0.1, 0.2, 0.3))
    out_s = render(g, CAMS, mode="RGB+ED", backend="torch", background=(0.1, 0.2, 0.3))
    assert out_b.rgb.shape == (2, 3, 16, 20, 3)
    assert out_b.meta["means2d"].shape == (2, 3, 80, 2)
    assert torch.allclose(out_b.rgb, out_s.rgb)
    for i in range(2):
        single = render(g[i], CAMS, mode="RGB+ED", backend="torch", background=(0.1, 0.2, 0.3))
        assert torch.allclose(out_b.rgb[i], single.rgb, atol=1e-6)
        assert torch.allclose(out_b.depth[i], single.depth, atol=1e-5)
        assert torch.allclose(out_b.alpha[i], single.alpha, atol=1e-6)


def test_per_camera_background_and_its_gradient():
    g, _ = scene()
    bg = torch.rand(3, 3, requires_grad=True)
    out = render(g, CAMS, background=bg, backend="torch")
    far_px = out.alpha[..., 0] < 1e-6
    assert bool(far_px.any())
    assert torch.allclose(out.rgb[far_px], bg[:, None, None, :].expand(3, 16, 20, 3)[far_px])
    out.rgb.sum().backward()
    expect = (1 - out.alpha.detach()).sum(dim=(1, 2))  # d sum(rgb) / d bg_c = sum_p T_p
    assert torch.allclose(bg.grad, expect.expand(3, 3), rtol=1e-5)


def test_means2d_gradient_is_retainable_for_densification():
    g, ts = scene(requires_grad=True)
    out = render(g, CAMS, backend="torch")
    m2 = out.meta["means2d"]
    out.rgb.square().sum().backward()  # no retain_grad() call needed
    vis = out.meta["radii"].gt(0).all(-1)
    assert m2.grad is not None and m2.grad.shape == (3, 80, 2)
    assert bool(m2.grad[vis].abs().sum(-1).gt(0).any())
    assert bool(m2.grad[~vis].eq(0).all())
    assert all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in ts)


def test_sh_is_view_dependent_and_degree_can_be_limited():
    g, _ = scene(sh_degree=3)
    full = render(g, CAMS, backend="torch")
    dc = render(g, CAMS, backend="torch", sh_degree=0)
    ref0 = render(g.with_sh_degree(0), CAMS, backend="torch")
    assert torch.allclose(dc.rgb, ref0.rgb)
    assert (full.rgb - dc.rgb).abs().max() > 1e-2
    with pytest.raises(ValidationError, match="sh_degree"):
        render(g, CAMS, backend="torch", sh_degree=4)


def test_empty_scene_gives_background():
    g = Gaussians.from_colors(torch.zeros(0, 3), torch.zeros(0, 3), 0.1)
    out = render(g, CAMS, background=(0.2, 0.4, 0.6), mode="RGB+D")
    assert out.rgb.shape == (3, 16, 20, 3)
    assert torch.allclose(out.rgb, torch.tensor([0.2, 0.4, 0.6]).expand_as(out.rgb))
    assert bool(out.alpha.eq(0).all()) and bool(out.depth.eq(0).all())
    assert out.meta["radii"].shape == (3, 0, 2)


def test_all_behind_camera_renders_background_without_nan():
    g, ts = scene(requires_grad=True)
    behind = Gaussians(ts[0] + torch.tensor([0.0, 0.0, 10.0]), *ts[1:])
    cam = Cameras.orbit([0.0], [0.0], radius=2.5, width=16, height=16)  # at z = 2.5, looks at -z
    out = render(behind, cam, background=1.0, mode="RGB+ED", backend="torch")
    assert bool(out.meta["radii"].eq(0).all())
    assert torch.allclose(out.rgb, torch.ones_like(out.rgb)) and bool(out.alpha.eq(0).all())
    (out.rgb.sum() + out.depth.sum()).backward()
    assert all(bool(torch.isfinite(t.grad).all()) for t in ts)


def test_mismatched_batch_dims_are_rejected():
    g, _ = scene(batch=(2,))
    cams = Cameras(CAMS.viewmats.expand(3, 3, 4, 4), CAMS.Ks.expand(3, 3, 3, 3), 20, 16)
    with pytest.raises(ValidationError, match="cameras"):
        render(g, cams)
    g1, _ = scene()
    with pytest.raises(ValidationError, match="cameras"):
        render(g1, cams)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"mode": "RGBD"}, "mode"),
        ({"backend": "opengl"}, "backend"),
        ({"rasterize_mode": "mip"}, "rasterize_mode"),
        ({"background": torch.zeros(2, 3)}, "background"),
        ({"background": (1.0, 0.0)}, "background"),
        ({"background": torch.tensor([0.0, float("nan"), 0.0])}, "background"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    g, _ = scene()
    with pytest.raises(ValidationError, match=field):
        render(g, CAMS, **kwargs)


@pytest.mark.parametrize("name,index", [("means", 0), ("scales", 2), ("sh", 4)])
def test_non_finite_inputs_are_rejected_with_the_field_named(name, index):
    _, ts = scene()
    ts[index] = ts[index].clone()
    ts[index].view(-1)[3] = float("nan")
    # Gaussians() itself rejects NaN; unchecked() skips value checks, render() still catches it.
    with pytest.raises(ValidationError, match=name):
        Gaussians(*ts)
    g = Gaussians.unchecked(*ts)
    with pytest.raises(ValidationError, match=f"gaussians.{name}"):
        render(g, CAMS)


def test_non_tensor_arguments_are_rejected():
    g, _ = scene()
    with pytest.raises(ValidationError, match="cameras"):
        render(g, CAMS.viewmats)
    with pytest.raises(ValidationError, match="gaussians"):
        render(g.means, CAMS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_gsplat_backend_without_cuda_gives_clear_error():
    g, _ = scene()
    with pytest.raises(BackendUnavailableError, match="backend='gsplat'"):
        render(g, CAMS, backend="gsplat")
    out = render(g, CAMS, backend="auto")  # auto never picks gsplat on CPU
    assert out.meta["backend"] in ("torch", "numba")


def test_cameras_move_to_gaussians_dtype():
    g, _ = scene()
    g64 = g.to(dtype=torch.float64)
    out = render(g64, CAMS, backend="torch")
    assert out.rgb.dtype == torch.float64
    assert torch.allclose(out.rgb.float(), render(g, CAMS, backend="torch").rgb, atol=1e-5)


def test_image_is_pixel_centred():
    # One round Gaussian exactly on the optical axis with cx = W/2: the image is symmetric
    # under flips, which fails if pixel centres were taken at integers.
    g = Gaussians.from_colors(torch.zeros(1, 3), torch.ones(1, 3), 0.1, 0.9)
    cam = Cameras.orbit([0.0], [0.0], radius=2.0, width=17, height=12)
    a = render(g, cam, backend="torch").alpha[0, ..., 0]
    assert torch.allclose(a, a.flip(0), atol=1e-6) and torch.allclose(a, a.flip(1), atol=1e-6)
