"""Every public block: output shape, finite values, gradients reach every parameter and input."""

from __future__ import annotations

import pytest
import torch

import gs_nets as n
from gs_core.testing import assert_block_trains


def _r(*shape):
    return torch.randn(*shape, requires_grad=True)


# name -> (module, inputs, expected output shape)
CASES = {
    "Attention": lambda: (n.Attention(8, 2), (_r(2, 5, 8),), (2, 5, 8)),
    "CrossAttention": lambda: (n.CrossAttention(8, 6, 2), (_r(2, 5, 8), _r(2, 3, 6)), (2, 5, 8)),
    "Mlp": lambda: (n.Mlp(8, 16, 4), (_r(3, 8),), (3, 4)),
    "SelfAttentionBlock": lambda: (
        n.SelfAttentionBlock(8, 2, layer_scale_init=0.1),
        (_r(2, 5, 8),),
        (2, 5, 8),
    ),
    "SmallViT": lambda: (
        n.SmallViT(image_size=16, patch_size=8, dim=8, depth=2, num_heads=2),
        (_r(2, 3, 20, 20),),  # resized to 16: CLS + 2 x 2 patches
        (2, 5, 8),
    ),
    "CrossAttentionBlock": lambda: (
        n.CrossAttentionBlock(8, 6, 2),
        (_r(2, 5, 8), _r(2, 3, 6)),
        (2, 5, 8),
    ),
    "TriConv": lambda: (n.TriConv(4, 6), (_r(2, 3, 4, 5, 5),), (2, 3, 6, 5, 5)),
    "TriplaneResBlock": lambda: (
        n.TriplaneResBlock(4, 8, emb_dim=5, resample="down", groups=2),
        (_r(2, 3, 4, 6, 6), _r(2, 5)),
        (2, 3, 8, 3, 3),
    ),
    "TriplaneDownsample": lambda: (n.TriplaneDownsample(4), (_r(1, 3, 4, 6, 6),), (1, 3, 4, 3, 3)),
    "TriplaneUpsample": lambda: (n.TriplaneUpsample(4, 2), (_r(1, 3, 4, 3, 3),), (1, 3, 2, 6, 6)),
    "TriplaneCrossAttention": lambda: (
        n.TriplaneCrossAttention(4, 6, 2, groups=2),
        (_r(1, 3, 4, 3, 3), _r(1, 2, 6)),
        (1, 3, 4, 3, 3),
    ),
    "SharedMLP": lambda: (n.SharedMLP(3, [4, 5]), (_r(2, 7, 3),), (2, 7, 5)),
    "PVConv": lambda: (
        n.PVConv(3, 4, 4, with_se=True),
        (_r(2, 20, 3), torch.randn(2, 20, 3)),
        (2, 20, 4),
    ),
    "SetAbstraction": lambda: (n.SetAbstraction(3, [4], 4, 4), (_r(2, 16, 3), _r(2, 16, 3)), None),
    "FeaturePropagation": lambda: (
        n.FeaturePropagation(4, 2, [5]),
        (torch.randn(2, 9, 3), torch.randn(2, 3, 3), _r(2, 3, 4), _r(2, 9, 2)),
        (2, 9, 5),
    ),
    "PVCNNUNet": lambda: (
        n.PVCNNUNet(n.PVCNNUNetConfig.preset("tiny", in_channels=2)),
        (torch.randn(2, 24, 3), _r(2, 24, 2)),
        (2, 24, 8),
    ),
    "PointTransformerLayer": lambda: (
        n.PointTransformerLayer(8, 16, 4, 4),
        (_r(2, 9, 8), torch.randn(2, 9, 3)),
        (2, 9, 16),
    ),
    "PointTransformerBlock": lambda: (
        n.PointTransformerBlock(8, 4, 4, norm="layer"),
        (_r(2, 9, 8), torch.randn(2, 9, 3)),
        (2, 9, 8),
    ),
    "PointTransformerStack": lambda: (
        n.PointTransformerStack(8, 2, 4, 4),
        (_r(2, 9, 8), torch.randn(2, 9, 3)),
        None,
    ),
    "MultiViewAttention": lambda: (
        n.MultiViewAttention(8, 2, groups=2),
        (_r(4, 8, 3, 3), 2),
        (4, 8, 3, 3),
    ),
    "SpatialTransformer3D": lambda: (
        n.SpatialTransformer3D(8, 2, context_dim=6, groups=2),
        (_r(4, 8, 3, 3), 2, _r(2, 5, 6)),
        (4, 8, 3, 3),
    ),
    "ResBlock": lambda: (
        n.ResBlock(4, 8, emb_dim=5, groups=2),
        (_r(2, 4, 6, 6), _r(2, 5)),
        (2, 8, 6, 6),
    ),
    "TimestepEmbedding": lambda: (n.TimestepEmbedding(8, 6), (torch.tensor([1.0, 50.0]),), (2, 8)),
    "CameraEmbedding": lambda: (n.CameraEmbedding(8), (_r(2, 4, 4),), (2, 8)),
    "SplatterUNet": lambda: (
        n.SplatterUNet(n.SplatterUNetConfig.preset("tiny")),
        (_r(1, 2, 9, 32, 32),),
        (1, 2, 14, 16, 16),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_shapes_and_gradients(name):
    torch.manual_seed(0)
    module, inputs, shape = CASES[name]()
    assert_block_trains(module, inputs, shape)


def test_every_public_block_is_covered():
    blocks = {
        k
        for k in n.__all__
        if isinstance(getattr(n, k), type) and issubclass(getattr(n, k), torch.nn.Module)
    }
    tested_elsewhere = {
        "Voxelization",
        "SE3d",
        "GEGLUFeedForward",
        "MultiViewTransformerBlock",
        "LayerScale",
        "TriplaneGroupNorm",
    }
    assert blocks - set(CASES) - tested_elsewhere == set()
