"""Multi-view attention, SpatialTransformer3D, ResBlocks and conditioning embeddings."""

from __future__ import annotations

import math

import pytest
import torch

from gs_core import Cameras
from gs_nets import (
    CameraEmbedding,
    MultiViewAttention,
    ResBlock,
    SpatialTransformer3D,
    TimestepEmbedding,
    plucker_embedding,
    timestep_embedding,
)
from gs_nets.multiview import tokens_to_views, views_to_tokens


def test_tokens_roundtrip_and_order():
    x = torch.randn(2 * 3, 4, 5, 6)  # B=2, V=3
    t = views_to_tokens(x, 3)
    assert t.shape == (2, 3 * 5 * 6, 4)
    torch.testing.assert_close(t[1, 2 * 30 + 4 * 6 + 5], x[1 * 3 + 2, :, 4, 5])
    torch.testing.assert_close(tokens_to_views(t, 3, 5, 6), x)
    with pytest.raises(ValueError, match="num_views"):
        views_to_tokens(x, 4)


def test_multiview_attention_is_joint_over_views():
    torch.manual_seed(0)
    mva = MultiViewAttention(32, num_heads=4, groups=8, skip_scale=math.sqrt(0.5)).eval()
    x = torch.randn(2 * 4, 32, 3, 3)
    out = mva(x, num_views=4)
    # reference: joint softmax attention over the 4 * 9 tokens of an object
    t = views_to_tokens(mva.norm(x), 4)
    q, k, v = mva.attn.qkv(t).chunk(3, -1)
    heads = lambda z: z.view(2, 36, 4, 8).transpose(1, 2)  # noqa: E731
    a = (heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(8)).softmax(-1) @ heads(v)
    ref = tokens_to_views(mva.attn.proj(a.transpose(1, 2).reshape(2, 36, 32)), 4, 3, 3)
    torch.testing.assert_close(out, (ref + x) * math.sqrt(0.5), atol=1e-5, rtol=1e-5)
    # with num_views=1 each view attends only to itself
    solo = mva(x, num_views=1)
    assert not torch.allclose(solo, out, atol=1e-4)


def test_spatial_transformer_3d():
    torch.manual_seed(0)
    st = SpatialTransformer3D(32, num_heads=4, context_dim=12, depth=2, groups=8)
    x = torch.randn(2 * 4, 32, 4, 4, requires_grad=True)
    ctx = torch.randn(2, 7, 12)
    torch.testing.assert_close(st(x, 4, ctx), x)  # zero-initialised out-projection
    torch.nn.init.normal_(st.proj_out.weight, std=0.1)
    out = st(x, 4, ctx)
    assert out.shape == x.shape
    # a shared [B, M, C] context equals the per-view [B*V, M, C] one
    torch.testing.assert_close(out, st(x, 4, ctx.repeat_interleave(4, 0)))
    out.square().sum().backward()
    assert x.grad.abs().sum() > 0
    # 3D self-attention: view 3 influences view 0 of the same object, never the other object
    x2 = x.detach().clone()
    x2[3] += 1
    with torch.no_grad():
        moved = st(x2, 4, ctx)
    assert not torch.allclose(moved[0], out[0].detach())
    torch.testing.assert_close(moved[4:], out[4:].detach())
    with pytest.raises(ValueError, match="context"):
        st(x, 4, torch.randn(3, 7, 12))
    with pytest.raises(ValueError, match="context"):
        st(x, 4, None)
    # without a context dim the second attention attends within each view
    assert SpatialTransformer3D(32, num_heads=4, groups=8)(x.detach(), 4).shape == x.shape


@pytest.mark.parametrize("scale_shift", [False, True])
def test_resblock_with_embedding(scale_shift):
    torch.manual_seed(0)
    blk = ResBlock(8, 16, emb_dim=10, groups=4, use_scale_shift_norm=scale_shift)
    x, emb = torch.randn(2, 8, 6, 6), torch.randn(2, 10, requires_grad=True)
    out = blk(x, emb)
    assert out.shape == (2, 16, 6, 6)
    out.sum().backward()
    assert emb.grad.abs().sum() > 0
    assert ResBlock(8, 8, resample="down", groups=4)(x).shape == (2, 8, 3, 3)
    assert ResBlock(8, 8, resample="up", groups=4)(x).shape == (2, 8, 12, 12)
    with pytest.raises(ValueError, match="groups"):
        ResBlock(10, 16, groups=4)


def test_resblock_is_lgm_resnet_block():
    # no embedding: (conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x)) * skip_scale
    torch.manual_seed(0)
    blk = ResBlock(8, 16, groups=4, skip_scale=0.5)
    x = torch.randn(1, 8, 5, 5)
    f = torch.nn.functional
    ref = blk.conv2(f.silu(blk.norm2(blk.conv1(f.silu(blk.norm1(x))))))
    torch.testing.assert_close(blk(x), (ref + blk.shortcut(x)) * 0.5)
    assert set(blk.state_dict()) == {
        f"{m}.{p}"
        for m in ("norm1", "conv1", "norm2", "conv2", "shortcut")
        for p in ("weight", "bias")
    }


def test_resblock_in_its_ddpmpp_form():
    """Per-width norm groups and a projected shortcut where resampling keeps the width (EDM's
    DDPM++ block): down = average the skip 2x2, then the 1x1 projection."""
    f = torch.nn.functional
    blk = ResBlock(8, 8, resample="down", groups=lambda c: c // 4, project_resampled_shortcut=True)
    assert blk.norm1.num_groups == 2 and isinstance(blk.shortcut, torch.nn.Conv2d)
    x = torch.randn(1, 8, 6, 6)
    h = blk.conv2(f.silu(blk.norm2(blk.conv1(f.avg_pool2d(f.silu(blk.norm1(x)), 2)))))
    torch.testing.assert_close(blk(x), h + blk.shortcut(f.avg_pool2d(x, 2)))
    assert isinstance(ResBlock(8, 8, resample="down", groups=4).shortcut, torch.nn.Identity)
    wide = ResBlock(8, 32, groups=lambda c: min(32, c // 4))
    assert (wide.norm1.num_groups, wide.norm2.num_groups) == (2, 8)
    with pytest.raises(ValueError, match="groups=3"):
        ResBlock(8, 8, groups=lambda c: 3)


def test_timestep_embedding_formula():
    t = torch.tensor([0, 10, 999])
    e = timestep_embedding(t, 6)
    freqs = torch.tensor([10000 ** (-i / 3) for i in range(3)])
    ref = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], -1)
    torch.testing.assert_close(e, ref)
    assert timestep_embedding(t, 7).shape == (3, 7)
    assert TimestepEmbedding(32, freq_dim=16)(t).shape == (3, 32)


def test_camera_and_plucker_embeddings():
    cams = Cameras.orbit([0, 90, 180, 270], 0.0, radius=1.5, width=8, height=8)
    emb = CameraEmbedding(24)
    assert emb(cams.camtoworlds).shape == (4, 24)
    with pytest.raises(ValueError, match="camera"):
        emb(torch.randn(4, 3, 4))
    rays = plucker_embedding(cams)
    assert rays.shape == (4, 6, 8, 8)
    torch.testing.assert_close(rays, cams.plucker_rays())
    # moment o x d is orthogonal to the unit direction d
    d, m = rays[:, 3:], rays[:, :3]
    torch.testing.assert_close((d * m).sum(1), torch.zeros(4, 8, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(4, 8, 8))
    assert plucker_embedding(cams, 4, 4).shape == (4, 6, 4, 4)
