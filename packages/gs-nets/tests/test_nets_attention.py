"""Attention layers and DINOv2 transformer blocks against explicit formulas."""

from __future__ import annotations

import pytest
import torch

from gs_nets import (
    Attention,
    CrossAttention,
    CrossAttentionBlock,
    SelfAttentionBlock,
)


def _reference_attention(q, k, v, heads, mask=None):
    b, n, c = q.shape
    d = c // heads
    q = q.view(b, n, heads, d).transpose(1, 2)
    k = k.view(b, -1, heads, d).transpose(1, 2)
    v = v.view(b, -1, heads, d).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / d**0.5
    if mask is not None:
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    return (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)


def test_self_attention_formula():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=4)
    x = torch.randn(2, 7, 16)
    q, k, v = attn.qkv(x).chunk(3, -1)
    ref = attn.proj(_reference_attention(q, k, v, 4))
    torch.testing.assert_close(attn(x), ref, atol=1e-5, rtol=1e-5)


def test_cross_attention_formula_and_mask():
    torch.manual_seed(0)
    attn = CrossAttention(16, context_dim=12, num_heads=2)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 9, 12)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 4:] = False
    k, v = attn.kv(ctx).chunk(2, -1)
    ref = attn.proj(_reference_attention(attn.q(x), k, v, 2, mask))
    out = attn(x, ctx, mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # masked tokens really are ignored
    ctx2 = ctx.clone()
    ctx2[1, 4:] = 100.0
    torch.testing.assert_close(attn(x, ctx2, mask)[1], out[1], atol=1e-5, rtol=1e-5)


def test_bad_heads_and_context():
    with pytest.raises(ValueError, match="num_heads"):
        Attention(10, num_heads=3)
    with pytest.raises(ValueError, match="context"):
        CrossAttention(8, 8, 2)(torch.randn(2, 3, 8), torch.randn(3, 4, 8))


def test_dinov2_blocks_shapes_and_grads():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 16, requires_grad=True)
    ctx = torch.randn(2, 4, 8, requires_grad=True)
    y = SelfAttentionBlock(16, 4, layer_scale_init=1e-5)(x)
    z = CrossAttentionBlock(16, 8, 4)(y, ctx)
    assert y.shape == z.shape == x.shape
    z.sum().backward()
    assert x.grad.abs().sum() > 0 and ctx.grad.abs().sum() > 0
