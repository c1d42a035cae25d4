"""AGG's own assemblies: its transformer block order, the query transformer, the triplane
generator, the latent feature expansion and the point upsampler (shapes, formulas, gradients)."""

from __future__ import annotations

import itertools

import pytest
import torch

from gs_core.testing import assert_block_trains
from gs_method_agg.blocks import AGGBlock, QueryTransformer
from gs_method_agg.feature_expansion import FeatureExpansion, expand_features, expand_points
from gs_method_agg.point_upsampler import PointUpsampler, PointUpsamplerConfig
from gs_method_agg.triplane_generator import TriplaneGenerator, TriplaneGeneratorConfig
from gs_nets import sample_triplane


def _r(*shape):
    return torch.randn(*shape, requires_grad=True)


def test_agg_block_order():
    # AGG: cross-attention, then self-attention, then MLP, each pre-normed and residual.
    torch.manual_seed(0)
    blk = AGGBlock(16, 8, num_heads=2, layer_scale_init=0.5)
    x, ctx = torch.randn(2, 6, 16), torch.randn(2, 3, 8)
    h = x + 0.5 * blk.cross_attn(blk.norm_cross(x), blk.norm_context(ctx))
    h = h + 0.5 * blk.attn(blk.norm_self(h))
    h = h + 0.5 * blk.mlp(blk.norm_mlp(h))
    torch.testing.assert_close(blk(x, ctx), h)


def test_query_transformer():
    torch.manual_seed(0)
    qt = QueryTransformer(num_queries=10, dim=16, depth=2, num_heads=2, context_dim=8)
    ctx, cls = torch.randn(3, 5, 8), torch.randn(3, 8)
    out = qt(ctx, cls)
    assert out.shape == (3, 10, 16)
    # the [CLS] token conditions every query
    assert not torch.allclose(out, qt(ctx, cls + 1.0))
    out.sum().backward()
    assert qt.queries.grad is not None and qt.global_proj.weight.grad is not None
    with pytest.raises(ValueError, match="global_token"):
        qt(ctx)


def test_triplane_generator(tmp_path):
    torch.manual_seed(0)
    cfg = TriplaneGeneratorConfig.preset("tiny")
    gen = TriplaneGenerator(cfg)
    ctx, cls = torch.randn(2, 9, cfg.context_dim), torch.randn(2, cfg.context_dim)
    planes = gen(ctx, cls)
    r = cfg.token_resolution * cfg.upsample_factor
    assert planes.shape == (2, 3, cfg.plane_channels, r, r) and gen.plane_resolution == r
    feats = sample_triplane(planes, torch.rand(2, 11, 3) * 2 - 1)
    feats.sum().backward()
    assert gen.transformer.queries.grad.abs().sum() > 0
    gen.save_pretrained(tmp_path / "tri")
    again = TriplaneGenerator.from_pretrained(tmp_path / "tri")
    torch.testing.assert_close(again(ctx, cls), planes.detach())
    assert TriplaneGeneratorConfig.preset("paper").context_dim == 768  # DINOv2-base tokens


def test_expand_features_rearrangement():
    b, n, c, r = 2, 3, 4, 5
    x = torch.randn(b, n, c * r)
    y = expand_features(x, r)
    assert y.shape == (b, n * r, c)
    for i, j in itertools.product(range(n), range(r)):
        torch.testing.assert_close(y[:, i * r + j], x[:, i, j * c : (j + 1) * c])
    xyz = torch.randn(b, n, 3)
    p = expand_points(xyz, r)
    torch.testing.assert_close(p[:, 2 * r + 4], xyz[:, 2])
    with pytest.raises(ValueError, match="ratio"):
        expand_features(x, 3)
    fe = FeatureExpansion(7, c, r)
    assert fe(torch.randn(b, n, 7)).shape == (b, n * r, c)


def test_point_upsampler_tiny():
    torch.manual_seed(0)
    cfg = PointUpsamplerConfig.preset("tiny")
    net = PointUpsampler(cfg)
    xyz, feats = torch.randn(2, 32, 3), torch.randn(2, 32, cfg.in_channels)
    ctx = torch.randn(2, 5, cfg.context_dim, requires_grad=True)
    xyz_up, out = net(xyz, feats, ctx)
    assert xyz_up.shape == (2, 32 * cfg.ratio, 3) and out.shape == (
        2,
        32 * cfg.ratio,
        cfg.out_channels,
    )
    out.square().mean().backward()
    assert ctx.grad.abs().sum() > 0  # the image conditions the result through cross-attention
    assert torch.isfinite(out).all()
    bad = cfg.model_copy(update={"latent_channels": 6})
    with pytest.raises(ValueError, match="decoder.in_channels"):
        PointUpsampler(bad)


@pytest.mark.parametrize("ratio, k", [(4, 4), (4, 12), (2, 4)])
def test_point_upsampler_sampling_reuse_is_exact(ratio, k):
    # ratio 4 = the decoder's first stride: the parents, their neighbourhoods (k = 4: a parent's
    # own copies; 12: three parents' copies) and the encoder's indices are reused;
    # ratio 2: strides differ, FPS and kNN run (same numbers either way)
    torch.manual_seed(0)
    cfg = PointUpsamplerConfig.preset("tiny", ratio=ratio)
    first = cfg.decoder.sa_levels[0].model_copy(update={"k": k})
    dec = cfg.decoder.model_copy(update={"sa_levels": [first, *cfg.decoder.sa_levels[1:]]})
    cfg = cfg.model_copy(update={"decoder": dec})
    fast = PointUpsampler(cfg).eval()
    slow = PointUpsampler(cfg.model_copy(update={"reuse_sampling": False})).eval()
    slow.load_state_dict(fast.state_dict())
    assert fast._reuse == (ratio == 4) and not slow._reuse
    xyz, feats = torch.randn(2, 40, 3), torch.randn(2, 40, cfg.in_channels)
    ctx = torch.randn(2, 5, cfg.context_dim)
    with torch.no_grad():
        a, b = fast(xyz, feats, ctx), slow(xyz, feats, ctx)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1], atol=1e-5, rtol=1e-5)


# name -> (module, inputs, expected output shape)
CASES = {
    "AGGBlock": lambda: (AGGBlock(8, 6, 2), (_r(2, 5, 8), _r(2, 3, 6)), (2, 5, 8)),
    "QueryTransformer": lambda: (
        QueryTransformer(4, 8, 1, 2, 6),
        (_r(2, 3, 6), _r(2, 6)),
        (2, 4, 8),
    ),
    "TriplaneGenerator": lambda: (
        TriplaneGenerator(TriplaneGeneratorConfig.preset("tiny")),
        (_r(2, 3, 32), _r(2, 32)),
        (2, 3, 8, 8, 8),
    ),
    "FeatureExpansion": lambda: (FeatureExpansion(4, 3, 2), (_r(2, 5, 4),), (2, 10, 3)),
    "PointUpsampler": lambda: (
        PointUpsampler(PointUpsamplerConfig.preset("tiny")),
        (torch.randn(1, 16, 3), _r(1, 16, 4), _r(1, 3, 16)),
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_shapes_and_gradients(name):
    torch.manual_seed(0)
    module, inputs, shape = CASES[name]()
    assert_block_trains(module, inputs, shape)
