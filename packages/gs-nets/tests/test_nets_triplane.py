"""Triplane sampling (against the bilinear formula), TriConv and triplane blocks."""

from __future__ import annotations

import math

import pytest
import torch

from gs_nets import (
    TRIPLANE_AXES,
    TriConv,
    TriplaneCrossAttention,
    TriplaneDownsample,
    TriplaneResBlock,
    TriplaneUpsample,
    sample_triplane,
    triplane_context,
)


def _bilinear(plane, u, v, align_corners):
    """Direct formula: plane [C, H, W] at u (width) / v (height) in [-1, 1], border padding."""
    c, h, w = plane.shape
    if align_corners:
        px, py = (u + 1) / 2 * (w - 1), (v + 1) / 2 * (h - 1)
    else:
        px, py = ((u + 1) * w - 1) / 2, ((v + 1) * h - 1) / 2
    px, py = min(max(px, 0.0), w - 1), min(max(py, 0.0), h - 1)
    x0, y0 = math.floor(px), math.floor(py)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    ax, ay = px - x0, py - y0
    return (
        plane[:, y0, x0] * (1 - ax) * (1 - ay)
        + plane[:, y0, x1] * ax * (1 - ay)
        + plane[:, y1, x0] * (1 - ax) * ay
        + plane[:, y1, x1] * ax * ay
    )


@pytest.mark.parametrize("align_corners", [False, True])
def test_sample_triplane_formula(align_corners):
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    xyz = torch.rand(2, 7, 3, dtype=torch.float64) * 2.2 - 1.1  # a few points outside the box
    out = sample_triplane(planes, xyz, align_corners=align_corners)
    assert out.shape == (2, 7, 12)
    for b in range(2):
        for n in range(7):
            ref = torch.cat(
                [
                    _bilinear(planes[b, p], float(xyz[b, n, a]), float(xyz[b, n, c]), align_corners)
                    for p, (a, c) in enumerate(TRIPLANE_AXES)
                ]
            )
            torch.testing.assert_close(out[b, n], ref)


def test_sample_triplane_texel_centres_and_grad():
    # align_corners=False: texel (row i, col j) of an R x R plane sits at (2j + 1) / R - 1.
    r = 4
    planes = torch.randn(1, 3, 2, r, r, requires_grad=True)
    i, j, k = 1, 2, 3  # x texel j... choose coordinates on texel centres of every plane
    xyz = torch.tensor([[[(2 * i + 1) / r - 1, (2 * j + 1) / r - 1, (2 * k + 1) / r - 1]]])
    out = sample_triplane(planes, xyz)[0, 0]
    # xy: width x (i), height y (j); yz: width y (j), height z (k); zx: width z (k), height x (i)
    ref = torch.cat([planes[0, 0, :, j, i], planes[0, 1, :, k, j], planes[0, 2, :, i, k]])
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    assert planes.grad.abs().sum() == 6  # one texel per plane and channel, weight 1


def test_sample_triplane_leading_dims_and_errors():
    planes = torch.randn(3, 3, 2, 4, 4)
    xyz = torch.rand(3, 5, 3) * 2 - 1
    assert sample_triplane(planes, xyz).shape == (3, 5, 6)
    assert sample_triplane(planes[0], xyz[0]).shape == (5, 6)
    with pytest.raises(ValueError, match="planes"):
        sample_triplane(torch.randn(3, 2, 2, 4, 4), xyz)
    with pytest.raises(ValueError, match="xyz"):
        sample_triplane(planes, torch.rand(3, 5, 2))


def test_triplane_context_is_volume_marginals():
    # Planes built as axis-means of a volume V[x, y, z]: the context of plane xy at (y, x) must
    # hold the marginal of V over (x, z) at y (from yz) and over (y, z) at x (from zx).
    torch.manual_seed(0)
    r, c = 5, 2
    vol = torch.randn(c, r, r, r, dtype=torch.float64)  # [C, x, y, z]
    xy = vol.mean(3).transpose(1, 2)  # [C, y(h), x(w)]
    yz = vol.mean(1).transpose(1, 2)  # [C, z(h), y(w)]
    zx = vol.mean(2)  # [C, x(h), z(w)]
    ctx = triplane_context(torch.stack([xy, yz, zx])[None])[0]  # [3, 3C, R, R]
    m_x, m_y, m_z = vol.mean((2, 3)), vol.mean((1, 3)), vol.mean((1, 2))  # [C, R] marginals
    for p, (plane, h_line, w_line) in enumerate([(xy, m_y, m_x), (yz, m_z, m_y), (zx, m_x, m_z)]):
        torch.testing.assert_close(ctx[p, :c], plane)
        torch.testing.assert_close(ctx[p, c : 2 * c], h_line[:, :, None].expand(c, r, r))
        torch.testing.assert_close(ctx[p, 2 * c :], w_line[:, None, :].expand(c, r, r))


def test_triconv_uses_other_planes():
    torch.manual_seed(0)
    conv = TriConv(4, 6, kernel_size=3)
    planes = torch.randn(2, 3, 4, 8, 8, requires_grad=True)
    out = conv(planes)
    assert out.shape == (2, 3, 6, 8, 8)
    # plane xy's output depends on plane yz (3D-aware), unlike a per-plane 2D conv
    g = torch.autograd.grad(out[:, 0].sum(), planes)[0]
    assert g[:, 1].abs().sum() > 0 and g[:, 2].abs().sum() > 0
    assert TriConv(4, 6, 3, stride=2)(planes).shape == (2, 3, 6, 4, 4)
    with pytest.raises(ValueError, match="planes"):
        conv(torch.randn(2, 3, 5, 8, 8))


@pytest.mark.parametrize(("resample", "size"), [(None, 8), ("down", 4), ("up", 16)])
def test_triplane_resblock(resample, size):
    torch.manual_seed(0)
    blk = TriplaneResBlock(8, 16, emb_dim=12, resample=resample, groups=4)
    planes = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    emb = torch.randn(2, 12, requires_grad=True)
    out = blk(planes, emb)
    assert out.shape == (2, 3, 16, size, size)
    # conv2 starts at zero: the block starts as its skip path, and the embedding still gets grads
    out.square().sum().backward()
    assert planes.grad.abs().sum() > 0 and blk.conv2.conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="emb"):
        blk(planes)


def test_triplane_resample_and_cross_attention():
    planes = torch.randn(1, 3, 8, 8, 8)
    assert TriplaneDownsample(8, 16)(planes).shape == (1, 3, 16, 4, 4)
    assert TriplaneUpsample(8)(planes).shape == (1, 3, 8, 16, 16)
    ca = TriplaneCrossAttention(8, context_dim=5, num_heads=2, groups=4)
    ctx = torch.randn(1, 3, 5)
    torch.testing.assert_close(ca(planes, ctx), planes)  # zero-initialised output projection
    torch.nn.init.normal_(ca.attn.proj.weight)
    out = ca(planes, ctx)
    assert out.shape == planes.shape and not torch.allclose(out, planes)
