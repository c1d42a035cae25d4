"""AGG's coarse hybrid generator (Sec. 3.2, Fig. 2) and Gaussian super-resolution (Sec. 3.3, Fig. 3).

Both produce *canonical* Gaussians (Sec. 3.1, 3.4.1): isotropic scale fixed per stage, rotation
``[1, 0, 0, 0]``, diffuse colour only (SH degree 0). What the networks predict is ``xyz``, ``rgb``
and ``opacity`` per Gaussian, returned as dicts of ``[B, N, 3]``, ``[B, N, 3]``, ``[B, N, 1]``.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_method_agg.config import AGGConfig
from gs_nets import PointUpsampler, QueryTransformer, TriplaneGenerator, sample_triplane


def _mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
        nn.Linear(hidden, dim_out),
    )  # fmt: skip


class GeometryPredictor(nn.Module):
    """Learnable queries (one per Gaussian) + the CLS token -> AGG blocks (cross-attention to the
    image tokens, self-attention, MLP) -> an MLP head.

    ``forward(cls [B, D], tokens [B, M, D])`` -> ``[B, N, out_dim]`` raw head outputs: ``3``
    (xyz) for the full model, ``3 + 1 + 3`` (xyz, opacity, rgb) for "w/o Texture Field".
    """

    def __init__(self, config: AGGConfig, out_dim: int):
        super().__init__()
        g = config.geometry
        self.transformer = QueryTransformer(
            num_queries=config.num_gaussians,
            dim=g.dim,
            depth=g.depth,
            num_heads=g.num_heads,
            context_dim=config.encoder_dim,
            mlp_ratio=g.mlp_ratio,
            layer_scale_init=g.layer_scale_init,
            use_global_token=True,
        )
        self.head = _mlp(g.dim, g.head_hidden, out_dim)

    def forward(self, cls: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.transformer(tokens, cls))


class TextureField(nn.Module):
    """A second query transformer generating a triplane, read at the predicted positions by a
    shared decoding MLP (Sec. 3.2, "Texture Field Generator").

    ``planes(cls, tokens)`` -> ``[B, 3, C, R, R]``; ``decode(planes, xyz_unit [B, N, 3])`` ->
    ``(rgb [B, N, 3], opacity [B, N, 1])`` in ``[0, 1]``.
    """

    def __init__(self, config: AGGConfig):
        super().__init__()
        self.generator = TriplaneGenerator(config.texture)
        c = config.texture.plane_channels
        self.decoder = _mlp(3 * c, config.texture_decoder_hidden, 4)

    def planes(self, cls: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.generator(tokens, cls)

    def decode(
        self, planes: torch.Tensor, xyz_unit: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.decoder(sample_triplane(planes, xyz_unit))
        return torch.sigmoid(raw[..., :3]), torch.sigmoid(raw[..., 3:])


class CoarseGenerator(nn.Module):
    """The hybrid generator: geometry predictor for the means, texture field for the rest.

    With ``config.texture_field = False`` ("w/o Texture Field", Table 2) the geometry predictor's
    head decodes location, opacity and colour together from one network.
    """

    def __init__(self, config: AGGConfig):
        super().__init__()
        self.config = config
        self.bound = config.position_bound
        self.geometry = GeometryPredictor(config, 3 if config.texture_field else 7)
        self.texture = TextureField(config) if config.texture_field else None

    def forward(self, cls: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = self.geometry(cls, tokens)
        xyz_unit = torch.tanh(raw[..., :3])
        out = {"xyz": xyz_unit * self.bound}
        if self.texture is not None:
            planes = self.texture.planes(cls, tokens)
            # The triplane spans the position cube: geometry queries land in [-1, 1]^3.
            out["rgb"], out["opacity"] = self.texture.decode(planes, xyz_unit)
        else:
            out["opacity"] = torch.sigmoid(raw[..., 3:4])
            out["rgb"] = torch.sigmoid(raw[..., 4:7])
        return out


class GaussianSuperResolution(nn.Module):
    """Point-voxel UNet encoder, cross-attention to the image tokens before and after the latent
    feature expansion ``(B, N, C*r) -> (B, N*r, C)``, point-voxel UNet decoder (Sec. 3.3).

    The decoder predicts, per child Gaussian, an offset from its parent (bounded by
    ``sr_offset_scale``), colour and opacity. ``forward(coarse, tokens)`` -> the dense dict.
    """

    def __init__(self, config: AGGConfig):
        super().__init__()
        self.config = config
        self.net = PointUpsampler(config.upsampler)

    def forward(
        self, coarse: dict[str, torch.Tensor], tokens: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        feats = torch.cat([coarse["rgb"], coarse["opacity"]], dim=-1)
        xyz_up, out = self.net(coarse["xyz"], feats, tokens)
        out = out.float()
        b = self.config.position_bound
        xyz = (xyz_up + self.config.sr_offset_scale * torch.tanh(out[..., :3])).clamp(-b, b)
        return {
            "xyz": xyz,
            "rgb": torch.sigmoid(out[..., 3:6]),
            "opacity": torch.sigmoid(out[..., 6:7]),
        }
