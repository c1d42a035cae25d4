"""Point Transformer v1 vector attention: brute-force reference, equivariance, memory."""

from __future__ import annotations

import pytest
import torch

from gs_nets import PointTransformerBlock, PointTransformerLayer, PointTransformerStack


def _reference_layer(layer: PointTransformerLayer, x, pos, k):
    """Per-point loop over the exact kNN set: y_i = sum_j softmax_j(gamma(phi_i - psi_j + d_ij))
    * (alpha_j + d_ij), d_ij = theta(p_i - p_j), weights shared by `share_planes` channels."""
    b, n, _ = x.shape
    s = layer.share_planes
    out = torch.zeros(b, n, layer.out_dim, dtype=x.dtype)
    for bi in range(b):
        d2 = ((pos[bi, :, None] - pos[bi, None]) ** 2).sum(-1)
        for i in range(n):
            nb = d2[i].argsort()[:k]
            delta = layer.pos_mlp(pos[bi, i] - pos[bi, nb])  # [k, C]
            logits = layer.weight_mlp(
                layer.to_q(x[bi, i]) - layer.to_k(x[bi, nb]) + delta
            )  # [k, C/s]
            w = logits.softmax(0).repeat(1, s)  # channel c uses weight c mod (C/s)
            out[bi, i] = (w * (layer.to_v(x[bi, nb]) + delta)).sum(0)
    return out


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_layer_matches_reference(norm):
    torch.manual_seed(0)
    layer = PointTransformerLayer(16, share_planes=4, k=5, norm=norm).double().eval()
    x = torch.randn(2, 12, 16, dtype=torch.float64)
    pos = torch.randn(2, 12, 3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x, pos), _reference_layer(layer, x, pos, 5))


def test_block_equivariance_and_grads():
    torch.manual_seed(0)
    blk = PointTransformerBlock(16, share_planes=8, k=6)
    x = torch.randn(2, 30, 16, requires_grad=True)
    pos = torch.randn(2, 30, 3)
    out = blk(x, pos)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is not None for p in blk.parameters())
    blk.eval()
    perm = torch.randperm(30)
    with torch.no_grad():
        torch.testing.assert_close(
            blk(x[:, perm], pos[:, perm]), blk(x, pos)[:, perm], atol=1e-5, rtol=1e-5
        )


def test_attention_is_local():
    # A token outside every neighbourhood of point 0 cannot influence it.
    torch.manual_seed(0)
    layer = PointTransformerLayer(8, share_planes=2, k=4).eval()
    pos = torch.randn(1, 20, 3)
    pos[0, 19] = 100.0
    x = torch.randn(1, 20, 8, requires_grad=True)
    g = torch.autograd.grad(layer(x, pos)[0, 0].sum(), x)[0]
    assert g[0, 19].abs().sum() == 0
    d2 = ((pos[0, 0] - pos[0]) ** 2).sum(-1)
    assert set(torch.nonzero(g[0].abs().sum(-1)).flatten().tolist()) <= set(
        d2.argsort()[:4].tolist()
    )


def test_stack_returns_every_level():
    torch.manual_seed(0)
    stack = PointTransformerStack(16, depth=3, k=4)
    x, pos = torch.randn(1, 10, 16), torch.randn(1, 10, 3)
    outs = stack(x, pos)
    assert len(outs) == 3 and all(o.shape == x.shape for o in outs)
    torch.testing.assert_close(outs[1], stack.blocks[1](outs[0], pos))


def test_errors():
    layer = PointTransformerLayer(16)
    with pytest.raises(ValueError, match="pos"):
        layer(torch.randn(1, 5, 16), torch.randn(1, 4, 3))
    with pytest.raises(ValueError, match="share_planes"):
        PointTransformerLayer(12, share_planes=8)
    with pytest.raises(ValueError, match="norm"):
        PointTransformerLayer(16, norm="group")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_memory_scales_with_n_times_k():
    # 65,536 tokens: an N x N attention matrix alone would need 16 GiB in fp32.
    dev = torch.device("cuda")
    blk = PointTransformerBlock(32, k=16).to(dev)
    x = torch.randn(1, 65_536, 32, device=dev, requires_grad=True)
    pos = torch.rand(1, 65_536, 3, device=dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    blk(x, pos).sum().backward()
    peak = torch.cuda.max_memory_allocated(dev) - base
    assert peak < 4 * 2**30, f"peak {peak / 2**30:.2f} GiB"
