"""The Fréchet distance between two sets of features (FID's formula, Heusel et al. 2017).

Compress3D reports FID on Inception features; those weights cannot be fetched offline, so the
offline proof reports this distance on the procedural contrastive image encoder's features and
names it "procedural Fréchet distance", never FID.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)`` for features
    ``a [N, D]``, ``b [M, D]`` (float64; at least 2 rows each)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValidationError(
            "features",
            "two [N, D] sets with N >= 2 and equal D",
            f"{tuple(a.shape)}, {tuple(b.shape)}",
        )
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrtm_psd(s_a)
    cross = _sqrtm_psd(root_a @ s_b @ root_a)
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(s_a + s_b - 2 * cross))


__all__ = ["frechet_distance"]
