"""gs-nets: the network blocks the gs3d methods share, in pure PyTorch (no custom CUDA ops).

Point operations (farthest point sampling, kNN, ball query, gathers) live in
:mod:`gs_core.points`; blocks only one method uses live in that method's plugin.

Layouts: tokens and points are ``[B, N, C]`` with positions ``[B, N, 3]``; triplanes are
``[B, 3, C, R, R]`` (planes ``xy, yz, zx``); multi-view feature maps are ``[B * V, C, H, W]``.
"""

from gs_nets.attention import Attention, CrossAttention, LayerScale, Mlp
from gs_nets.embeddings import (
    CameraEmbedding,
    TimestepEmbedding,
    plucker_embedding,
    timestep_embedding,
)
from gs_nets.interpolation import interpolate_features
from gs_nets.multiview import (
    GEGLUFeedForward,
    MultiViewAttention,
    MultiViewTransformerBlock,
    SpatialTransformer3D,
)
from gs_nets.point_transformer import (
    PointTransformerBlock,
    PointTransformerLayer,
    PointTransformerStack,
)
from gs_nets.pointnet2 import FeaturePropagation, SetAbstraction
from gs_nets.pvcnn_unet import FPLevelConfig, PVCNNUNet, PVCNNUNetConfig, SALevelConfig
from gs_nets.pvconv import PVConv, SE3d, SharedMLP
from gs_nets.resblock import ResBlock
from gs_nets.splatter_unet import (
    SplatterUNet,
    SplatterUNetConfig,
    params_to_gaussians,
    splatter_activations,
    splatter_unet_input,
)
from gs_nets.transformer import CrossAttentionBlock, SelfAttentionBlock
from gs_nets.triconv import TriConv, triplane_context
from gs_nets.triplane import TRIPLANE_AXES, sample_triplane
from gs_nets.triplane_blocks import (
    TriplaneCrossAttention,
    TriplaneDownsample,
    TriplaneGroupNorm,
    TriplaneResBlock,
    TriplaneUpsample,
)
from gs_nets.vit import SmallViT
from gs_nets.voxelization import (
    Voxelization,
    avg_voxelize,
    normalize_voxel_coords,
    trilinear_devoxelize,
)

__version__ = "0.1.0"

__all__ = [
    "TRIPLANE_AXES",
    "Attention",
    "CameraEmbedding",
    "CrossAttention",
    "CrossAttentionBlock",
    "FPLevelConfig",
    "FeaturePropagation",
    "GEGLUFeedForward",
    "LayerScale",
    "Mlp",
    "MultiViewAttention",
    "MultiViewTransformerBlock",
    "PVCNNUNet",
    "PVCNNUNetConfig",
    "PVConv",
    "PointTransformerBlock",
    "PointTransformerLayer",
    "PointTransformerStack",
    "ResBlock",
    "SALevelConfig",
    "SE3d",
    "SelfAttentionBlock",
    "SmallViT",
    "SetAbstraction",
    "SharedMLP",
    "SpatialTransformer3D",
    "SplatterUNet",
    "SplatterUNetConfig",
    "TimestepEmbedding",
    "TriConv",
    "TriplaneCrossAttention",
    "TriplaneDownsample",
    "TriplaneGroupNorm",
    "TriplaneResBlock",
    "TriplaneUpsample",
    "Voxelization",
    "__version__",
    "avg_voxelize",
    "interpolate_features",
    "normalize_voxel_coords",
    "params_to_gaussians",
    "plucker_embedding",
    "sample_triplane",
    "splatter_activations",
    "splatter_unet_input",
    "timestep_embedding",
    "trilinear_devoxelize",
    "triplane_context",
]
