"""Table II (b): a single-image splatter network as DD3G's generator.

``SplatterBaseline(config)(rgb [B, 3, H, W], noise, rays)`` -> the attributes PEPD returns
(``position [B, N, 3]``, ``log_scale``, ``rotation`` (wxyz), ``color``, ``opacity [B, N]``),
``N = config.splatter.num_gaussians()``; with SI's head at SH degree 1 also ``sh_rest
[B, N, 3, 3]`` (band-1 coefficients by colour, world frame). The network sees the input image;
its Gaussians are placed through the fixed input camera (azimuth 0, elevation 0: the paper
fixes the input pose, IV-C). The noise and the random cameras ``C`` are ignored, as a network
built for 3D data has no input for them. :class:`ImageAsInput` takes the image encoder's place,
so training, inference and CUDA graphs run unchanged. ``config.splatter.head`` picks Splatter Image's
depth-along-the-ray head or LGM's direct positions (``SplatterBaselineConfig``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.rotations import quaternion_multiply, quaternion_of_rotation
from gs_method_dd3g.cameras import orbit_views, plucker_inputs
from gs_method_dd3g.config import DD3GConfig
from gs_method_dd3g.ddpmpp_unet import DDPMppUNet
from gs_nets.splatter_unet import (
    OPACITY,
    POS,
    RGB,
    ROTATION,
    SCALE,
    SplatterUNet,
    SplatterUNetBackbone,
    SplatterUNetConfig,
)

# Splatter Image's output groups, in its order: depth, offset, opacity, scale, rotation, SH DC,
# and with SH degree 1 the band-1 coefficients (3 per colour channel).
SI_GROUPS = (1, 3, 1, 3, 4, 3)
SH_REST = 9
SH_C0 = 0.28209479177387814  # the degree-0 spherical harmonic, Y_0^0
# gs_core's band-1 term is C1 * d . (M c) for coefficients c = (c_-1, c_0, c_1) along d: M turns
# them into the vector they weigh. A camera-frame direction is R^T d, so coefficients predicted
# in the camera's frame are M^T R M c in the world's (SI's code turns them the same way).
_SH1_AS_VECTOR = ((0.0, 0.0, -1.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def sh1_turn(rotation: torch.Tensor) -> torch.Tensor:
    """``[3, 3]``: band-1 SH coefficients ``[..., 3, C]`` of a frame -> the same colours in the
    frame that ``rotation [3, 3]`` maps it to (``rotation @ d`` sees what ``d`` saw)."""
    m = torch.tensor(_SH1_AS_VECTOR, dtype=rotation.dtype, device=rotation.device)
    return m.T @ rotation @ m


class ImageAsInput(nn.Module):
    """The encoder of the splatter baseline: the image itself (no parameters)."""

    dim = 3

    def ensure_weights(self) -> None:
        """Nothing to fetch (the image encoder's interface)."""

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb


class SplatterBaseline(nn.Module):
    """A splatter U-Net on the input view (see ``SplatterBaselineConfig``)."""

    def __init__(self, config: DD3GConfig):
        super().__init__()
        c = config.splatter
        self.head_kind = c.head
        self.input_size = c.input_size
        si = c.head == "splatter_image"
        self.groups = SI_GROUPS + ((SH_REST,) if c.colour_sh_degree() else ())
        unet_config = SplatterUNetConfig(
            in_channels=3 if si else 9,
            out_channels=sum(self.groups) if si else 14,
            input_size=c.input_size,
            down_channels=c.down_channels,
            down_attention=c.down_attention,
            up_channels=c.up_channels,
            up_attention=c.up_attention,
            layers_per_block=c.layers_per_block,
            attention_heads=c.attention_heads,
            groups=c.groups,
        )
        self.ddpmpp = c.backbone == "ddpmpp"
        side = c.input_size if self.ddpmpp else unet_config.splat_size
        with torch.device("cpu"):  # fixed geometry, also when the model is built on meta
            zero = torch.zeros(1, 1)
            cams = orbit_views(zero, zero, config.camera_radius, config.fov_deg, c.input_size)
            if si:
                self.backbone = (
                    DDPMppUNet(3, sum(self.groups), c.input_size, c.ddpmpp)
                    if self.ddpmpp
                    else SplatterUNetBackbone(unet_config)
                )
                self.head = nn.Conv2d(sum(self.groups), sum(self.groups), 1)
                self._init_head(c)
                out = cams.resized(side, side)
                c2w = out.camtoworlds[0, 0].float()
                # The camera's pixel rays back in its own frame, scaled to z = 1, so that the
                # depth is the z-distance (SI's).
                _, world_dirs = out.rays()
                dirs = world_dirs[0, 0].reshape(-1, 3).float() @ c2w[:3, :3]
                dirs = dirs / dirs[:, 2:]
                self.register_buffer("ray_dirs", dirs, persistent=False)
                self.register_buffer("cam_rotation", c2w[:3, :3].clone(), persistent=False)
                self.register_buffer("cam_center", c2w[:3, 3].clone(), persistent=False)
                q = quaternion_of_rotation(c2w[:3, :3]).float()
                self.register_buffer("cam_quaternion", q, persistent=False)
                self.register_buffer("sh_turn", sh1_turn(c2w[:3, :3]), persistent=False)
                self.depth_range = c.depth_range
            else:
                self.unet = SplatterUNet(unet_config)
                rays = plucker_inputs(cams, c.input_size)
                self.register_buffer("rays", rays, persistent=False)

    def _init_head(self, c) -> None:
        """Each output group starts as Splatter Image's does: Xavier-uniform with the group's
        gain, a constant bias (depth mid-range, offsets near zero, scales near 0.02, opacity
        near sigmoid(-2), colours spread by gain 5, band-1 SH at zero)."""
        gains = (
            1.0,
            c.offset_init_gain,
            c.opacity_init_gain,
            c.scale_init_gain,
            1.0,
            c.color_init_gain,
            0.0,
        )
        biases = (0.0, 0.0, c.opacity_init_bias, math.log(c.scale_init), 0.0, 0.0, 0.0)
        start = 0
        with torch.no_grad():
            k = len(self.groups)
            for n, gain, bias in zip(self.groups, gains[:k], biases[:k], strict=True):
                nn.init.xavier_uniform_(self.head.weight[start : start + n], gain=gain)
                self.head.bias[start : start + n].fill_(bias)
                start += n

    def forward(self, rgb: torch.Tensor, noise=None, rays=None) -> dict[str, torch.Tensor]:
        b = rgb.shape[0]
        s = self.input_size
        if rgb.shape[-2:] != (s, s):
            # Resized in float32: antialiased bilinear has no bf16 / fp16 CPU kernel.
            rgb = F.interpolate(
                rgb.float(), size=(s, s), mode="bilinear", antialias=True, align_corners=False
            ).to(rgb.dtype)
        if self.head_kind == "splatter_image":
            return self._splatter_image(rgb)
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

    def _splatter_image(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(rgb) if self.ddpmpp else self.backbone(rgb, num_views=1)
        raw = self.head(features)  # [B, 15 (+ 9 with SH degree 1), S, S]
        # The geometry in float32 outside autocast (which would run the matmul in bf16): in
        # bf16 a position near the camera radius (1.5) resolves to about 0.008 world units,
        # and these few operations are cheap next to the U-Net.
        with torch.autocast(raw.device.type, enabled=False):
            return self._activate(raw.float().flatten(2).transpose(1, 2))  # [B, N, 15 (+9)]

    def _activate(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        depth, offset, opacity, scale, rotation, sh_dc, *rest = raw.split(self.groups, dim=-1)
        near, far = self.depth_range
        z = torch.sigmoid(depth) * (far - near) + near
        local = self.ray_dirs.float() * z + offset  # camera frame, [B, N, 3]
        position = local @ self.cam_rotation.float().T + self.cam_center.float()
        turn = self.cam_quaternion.float()
        out = {
            "position": position,
            "log_scale": scale,  # SI's exp activation: the raw value is the log-scale
            "rotation": quaternion_multiply(turn, F.normalize(rotation, dim=-1)),
            "color": 0.5 + SH_C0 * sh_dc,  # SH DC as RGB (the renderer clamps at 0, as SI's)
            "opacity": torch.sigmoid(opacity).squeeze(-1),
        }
        if rest:  # [B, N, 3 coefficients, 3 colours], turned to the world's frame
            out["sh_rest"] = torch.einsum(
                "ij,bnjc->bnic", self.sh_turn.float(), rest[0].unflatten(-1, (3, 3))
            )
        return out


__all__ = ["ImageAsInput", "SplatterBaseline", "sh1_turn"]
