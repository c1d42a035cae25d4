"""Triplanes: bilinear feature lookup and AGG's transformer triplane generator.

A triplane is ``planes [..., 3, C, R, R]`` holding the planes ``xy``, ``yz``, ``zx`` (the names
Compress3D uses) in that order. Plane ``p`` spans the coordinate pair ``TRIPLANE_AXES[p] = (u, v)``
with ``u`` along the width (last dim) and ``v`` along the height, exactly as
:func:`torch.nn.functional.grid_sample` reads a 2D grid; points live in ``[-1, 1]^3``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_core.pretrained import PretrainedMixin
from gs_nets.transformer import QueryTransformer

# (u, v) coordinate indices of the planes xy, yz, zx; u -> width, v -> height.
TRIPLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 0))


def _check_planes(planes: torch.Tensor) -> None:
    if planes.ndim < 4 or planes.shape[-4] != 3:
        raise ValidationError("planes", "shape [..., 3, C, H, W]", f"shape {tuple(planes.shape)}")


def sample_triplane(
    planes: torch.Tensor,
    xyz: torch.Tensor,
    align_corners: bool = False,
    padding_mode: str = "border",
) -> torch.Tensor:
    """Bilinearly sample each plane at the projected points and concatenate the features.

    Args:
        planes: ``[..., 3, C, H, W]`` planes ``xy, yz, zx`` (see :data:`TRIPLANE_AXES`).
        xyz: ``[..., N, 3]`` points in ``[-1, 1]^3`` (same leading dims as ``planes``).
        align_corners, padding_mode: as in :func:`torch.nn.functional.grid_sample`; with the
            default ``align_corners=False`` the value -1 / +1 is the outer edge of the border
            texels (EG3D / AGG convention).

    Returns:
        ``[..., N, 3 * C]`` features, plane ``xy`` first (AGG Sec. 3.2: "concatenates
        interpolated features").
    """
    _check_planes(planes)
    lead = planes.shape[:-4]
    if xyz.shape[-1] != 3 or tuple(xyz.shape[:-2]) != tuple(lead):
        raise ValidationError(
            "xyz",
            f"shape [{', '.join(map(str, lead)) + ', ' if lead else ''}N, 3]",
            f"shape {tuple(xyz.shape)}",
        )
    c, h, w = planes.shape[-3:]
    n = xyz.shape[-2]
    b = math.prod(lead)
    # plain indexing, no index tensor: a host-to-device copy would break CUDA graph capture
    grids = torch.stack(
        [torch.stack([xyz[..., i], xyz[..., j]], dim=-1) for i, j in TRIPLANE_AXES], dim=-3
    )  # [..., 3, N, 2]
    grids = grids.reshape(b * 3, 1, n, 2).to(planes.dtype)
    out = F.grid_sample(
        planes.reshape(b * 3, c, h, w),
        grids,
        mode="bilinear",
        padding_mode=padding_mode,
        align_corners=align_corners,
    )  # [B*3, C, 1, N]
    out = out.reshape(b, 3, c, n).permute(0, 3, 1, 2).reshape(*lead, n, 3 * c)
    return out


class TriplaneGeneratorConfig(Config):
    """Sizes of :class:`TriplaneGenerator`.

    AGG fixes only the encoder (DINOv2-base, 768-d tokens at 256x256 input); the triplane sizes
    of the ``paper`` preset follow LRM's transformer-to-triplane design (32x32 tokens per plane,
    one stride-2 deconvolution) at AGG's smaller scale; they are our choice.
    """

    context_dim: int = 768
    dim: int = 512
    depth: int = 8
    num_heads: int = 8
    mlp_ratio: float = 4.0
    token_resolution: int = 32
    upsample_factor: int = 2
    plane_channels: int = 32
    use_global_token: bool = True
    layer_scale_init: float | None = 1e-5

    presets: ClassVar = {
        "paper": {},
        "small": {
            "dim": 384,
            "depth": 6,
            "num_heads": 6,
            "token_resolution": 16,
            "plane_channels": 32,
        },
        "tiny": {
            "context_dim": 32,
            "dim": 32,
            "depth": 1,
            "num_heads": 2,
            "token_resolution": 4,
            "plane_channels": 8,
            "layer_scale_init": None,
        },
    }


class TriplaneGenerator(PretrainedMixin, nn.Module):
    """Image tokens -> triplane (AGG's texture field generator, Sec. 3.2, Fig. 2).

    Learnable query tokens (``3 * r * r``, one per texel of three ``r x r`` token planes) pass
    through AGG blocks with cross-attention to the image tokens, are reshaped to three
    ``dim x r x r`` planes and upsampled by a transposed convolution to ``plane_channels x R x R``
    with ``R = r * upsample_factor``.

    ``forward(context [B, M, Cc], global_token [B, Cc] | None)`` -> ``planes [B, 3, C, R, R]``.
    """

    config_class = TriplaneGeneratorConfig

    def __init__(self, config: TriplaneGeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or TriplaneGeneratorConfig()
        r = config.token_resolution
        f = config.upsample_factor
        if r <= 0 or f <= 0:
            raise ValidationError(
                "TriplaneGeneratorConfig",
                "token_resolution > 0 and upsample_factor > 0",
                f"{r}, {f}",
            )
        self.transformer = QueryTransformer(
            num_queries=3 * r * r,
            dim=config.dim,
            depth=config.depth,
            num_heads=config.num_heads,
            context_dim=config.context_dim,
            mlp_ratio=config.mlp_ratio,
            layer_scale_init=config.layer_scale_init,
            use_global_token=config.use_global_token,
        )
        # Kernel = stride: every token expands into its own f x f texel patch, as LRM's deconv.
        self.upsample = nn.ConvTranspose2d(
            config.dim, config.plane_channels, kernel_size=f, stride=f
        )

    @property
    def plane_resolution(self) -> int:
        return self.config.token_resolution * self.config.upsample_factor

    def forward(
        self,
        context: torch.Tensor,
        global_token: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r = self.config.token_resolution
        tokens = self.transformer(context, global_token, context_mask)  # [B, 3*r*r, dim]
        b = tokens.shape[0]
        x = tokens.reshape(b * 3, r, r, -1).permute(0, 3, 1, 2)  # [B*3, dim, r(v), r(u)]
        x = self.upsample(x)
        return x.reshape(b, 3, *x.shape[1:])


__all__ = ["TRIPLANE_AXES", "TriplaneGenerator", "TriplaneGeneratorConfig", "sample_triplane"]
