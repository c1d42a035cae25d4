"""Table II (b): a single-image splatter network as DD3G's generator.

``SplatterBaseline(config)(rgb [B, 3, H, W], noise, rays)`` -> the attributes PEPD returns
(``position [B, N, 3]``, ``log_scale``, ``rotation`` (wxyz), ``color``, ``opacity [B, N]``),
``N = config.splatter.num_gaussians()``. The image goes to the network itself, with the Plücker
rays of the fixed input camera (azimuth 0, elevation 0: the paper fixes the input pose, IV-C);
the noise and the random cameras ``C`` are ignored, as a network built for 3D data has no input
for them. :class:`ImageAsInput` takes the image encoder's place, so training, inference and
CUDA graphs run unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_method_dd3g.cameras import orbit_views, plucker_inputs
from gs_method_dd3g.config import DD3GConfig
from gs_nets.splatter_unet import (
    OPACITY,
    POS,
    RGB,
    ROTATION,
    SCALE,
    SplatterUNet,
    SplatterUNetConfig,
)


class ImageAsInput(nn.Module):
    """The encoder of the splatter baseline: the image itself (no parameters)."""

    dim = 3

    def ensure_weights(self) -> None:
        """Nothing to fetch (the image encoder's interface)."""

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb


class SplatterBaseline(nn.Module):
    """gs_nets' LGM splatter U-Net on the input view (see ``SplatterBaselineConfig``)."""

    def __init__(self, config: DD3GConfig):
        super().__init__()
        c = config.splatter
        self.input_size = c.input_size
        self.unet = SplatterUNet(
            SplatterUNetConfig(
                in_channels=9,
                out_channels=14,
                input_size=c.input_size,
                down_channels=c.down_channels,
                down_attention=c.down_attention,
                up_channels=c.up_channels,
                up_attention=c.up_attention,
                layers_per_block=c.layers_per_block,
                attention_heads=c.attention_heads,
                groups=c.groups,
            )
        )
        with torch.device("cpu"):  # fixed geometry, also when the model is built on meta
            zero = torch.zeros(1, 1)
            cams = orbit_views(zero, zero, config.camera_radius, config.fov_deg, c.input_size)
            rays = plucker_inputs(cams, c.input_size)
        self.register_buffer("rays", rays, persistent=False)

    def forward(self, rgb: torch.Tensor, noise=None, rays=None) -> dict[str, torch.Tensor]:
        b = rgb.shape[0]
        s = self.input_size
        if rgb.shape[-2:] != (s, s):
            # Resized in float32: antialiased bilinear has no bf16 / fp16 CPU kernel.
            rgb = F.interpolate(
                rgb.float(), size=(s, s), mode="bilinear", antialias=True, align_corners=False
            ).to(rgb.dtype)
        fixed = self.rays.to(rgb.dtype).expand(b, -1, -1, -1, -1)
        views = torch.cat([rgb.unsqueeze(1), fixed], dim=2)  # [B, 1, 9, s, s]
        p = self.unet.gaussian_params(views)  # LGM's activations, [B, N, 14]
        return {
            "position": p[..., POS],
            "log_scale": torch.log(p[..., SCALE].clamp_min(1e-8)),
            "rotation": p[..., ROTATION],
            "color": p[..., RGB],
            "opacity": p[..., OPACITY].squeeze(-1),
        }


__all__ = ["ImageAsInput", "SplatterBaseline"]
