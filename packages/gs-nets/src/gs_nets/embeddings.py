"""Conditioning embeddings: diffusion timesteps, cameras, and Plücker rays.

* :func:`timestep_embedding`: the sinusoidal embedding of DDPM / LDM (``[cos, sin]`` halves).
* :class:`TimestepEmbedding` / :class:`CameraEmbedding`: two-layer SiLU MLPs mapping a
  sinusoidal timestep or a flattened 4x4 camera-to-world matrix to the ResBlock embedding
  width (MVDream adds the camera embedding to the timestep embedding).
* :func:`plucker_embedding`: the dense per-pixel ray embedding ``[o x d, d]`` of
  :meth:`gs_core.Cameras.plucker_rays` (LGM, DD3G), as ``[..., C, 6, H, W]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``t [B]`` (float or int timesteps) -> ``[B, dim]`` = ``[cos(t f_i), sin(t f_i)]``,
    ``f_i = max_period^(-i / (dim/2))``; a zero column is appended when ``dim`` is odd."""
    if t.ndim != 1:
        raise ValidationError("t", "shape [B]", f"shape {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    """``t [B]`` -> ``[B, dim]``: sinusoidal embedding of width ``freq_dim`` then Linear-SiLU-Linear."""

    def __init__(self, dim: int, freq_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        self.freq_dim = freq_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(
            timestep_embedding(t, self.freq_dim, self.max_period).to(self.mlp[0].weight.dtype)
        )


class CameraEmbedding(nn.Module):
    """Camera matrices ``[B, 4, 4]`` (or already flat ``[B, 16]``) -> ``[B, dim]`` (MVDream)."""

    def __init__(self, dim: int, in_dim: int = 16):
        super().__init__()
        self.in_dim = in_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, camera: torch.Tensor) -> torch.Tensor:
        flat = camera.reshape(camera.shape[0], -1)
        if flat.shape[-1] != self.in_dim:
            raise ValidationError(
                "camera", f"[B, 4, 4] or [B, {self.in_dim}]", f"shape {tuple(camera.shape)}"
            )
        return self.mlp(flat.to(self.mlp[0].weight.dtype))


def plucker_embedding(
    cameras: Cameras, height: int | None = None, width: int | None = None
) -> torch.Tensor:
    """Plücker rays ``[..., C, 6, H, W]`` = ``[o x d, d]`` of ``cameras`` (optionally resized first)."""
    if (height is None) != (width is None):
        raise ValidationError("plucker_embedding", "both height and width, or neither")
    if height is not None and (height, width) != (cameras.height, cameras.width):
        cameras = cameras.resized(int(width), int(height))
    return cameras.plucker_rays()


__all__ = ["CameraEmbedding", "TimestepEmbedding", "plucker_embedding", "timestep_embedding"]
