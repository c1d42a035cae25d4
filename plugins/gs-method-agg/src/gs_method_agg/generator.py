"""AGG's coarse hybrid generator (Sec. 3.2, Fig. 2) and Gaussian super-resolution (Sec. 3.3, Fig. 3).

Both produce *canonical* Gaussians (Sec. 3.1, 3.4.1): isotropic scale fixed per stage, rotation
``[1, 0, 0, 0]``, diffuse colour only (SH degree 0). What the networks predict is ``xyz``, ``rgb``
and ``opacity`` per Gaussian, returned as dicts of ``[B, N, 3]``, ``[B, N, 3]``, ``[B, N, 1]``.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_method_agg.blocks import QueryTransformer
from gs_method_agg.config import AGGConfig
from gs_method_agg.point_upsampler import PointUpsampler
from gs_method_agg.triplane_generator import TriplaneGenerator
from gs_nets import sample_triplane


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


def split_directions(ratio: int) -> torch.Tensor:
    """``[ratio, 3]`` directions summing to zero with ``sum |u|^2 = ratio``: a regular tetrahedron
    for ``ratio = 4`` (AGG's 4,096 -> 16,384; then ``sum(u u^T) = (4 / 3) I``), ``+-`` the axes
    for 6, otherwise a centred Fibonacci sphere (approximately isotropic for larger ratios)."""
    if ratio == 1:
        return torch.zeros(1, 3)
    if ratio == 4:
        u = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
    elif ratio == 6:
        u = torch.cat([torch.eye(3), -torch.eye(3)])
    else:
        i = torch.arange(ratio, dtype=torch.float64) + 0.5
        y = 1 - 2 * i / ratio
        phi = i * torch.pi * (3 - 5**0.5)
        ring = (1 - y * y).sqrt()
        u = torch.stack([ring * phi.cos(), y, ring * phi.sin()], -1)
        u = u - u.mean(0)
        return (u / u.square().sum(-1).mean().sqrt()).float()
    return u / u.norm(dim=-1, keepdim=True)


class GaussianSuperResolution(nn.Module):
    """Point-voxel UNet encoder, cross-attention to the image tokens before and after the latent
    feature expansion ``(B, N, C*r) -> (B, N*r, C)``, point-voxel UNet decoder (Sec. 3.3).

    ``forward(coarse, tokens)`` -> the dense dict. The decoder's outputs are residuals on a
    fixed split of each parent (the paper leaves the parametrisation open; this one is ours):
    child ``j`` starts at ``parent + d u_j`` with the :func:`split_directions` ``u_j`` and
    ``d = sqrt(3 (s_coarse^2 - s_fine^2))``, so that the ``r`` fine Gaussians have the second
    moment of their coarse parent (like 3DGS's densification split), and with the parent's colour
    and opacity. The head starts at zero, so training starts from a super-resolved model that
    renders like the coarse one; it then moves each child by up to ``sr_offset_scale`` and
    changes its colour and opacity (in logit space) freely.
    """

    def __init__(self, config: AGGConfig):
        super().__init__()
        self.config = config
        self.net = PointUpsampler(config.upsampler)
        nn.init.zeros_(self.net.head.weight)
        nn.init.zeros_(self.net.head.bias)
        spread = max(config.coarse_scale**2 - config.fine_scale**2, 0.0)
        offsets = split_directions(config.upsampler.ratio) * (3 * spread) ** 0.5
        self.register_buffer("split_offsets", offsets, persistent=False)

    def forward(
        self, coarse: dict[str, torch.Tensor], tokens: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        feats = torch.cat([coarse["rgb"], coarse["opacity"]], dim=-1)
        xyz_up, out = self.net(coarse["xyz"], feats, tokens)
        out = out.float()
        r = self.config.upsampler.ratio
        n = coarse["xyz"].shape[1]
        base = xyz_up.float() + self.split_offsets.repeat(n, 1)
        bound = self.config.position_bound
        xyz = (base + self.config.sr_offset_scale * torch.tanh(out[..., :3])).clamp(-bound, bound)
        eps = 1e-4
        parent_rgb = torch.logit(coarse["rgb"].float().clamp(eps, 1 - eps))
        parent_opacity = torch.logit(coarse["opacity"].float().clamp(eps, 1 - eps))
        return {
            "xyz": xyz,
            "rgb": torch.sigmoid(parent_rgb.repeat_interleave(r, dim=1) + out[..., 3:6]),
            "opacity": torch.sigmoid(parent_opacity.repeat_interleave(r, dim=1) + out[..., 6:7]),
        }
