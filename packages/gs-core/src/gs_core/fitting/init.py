"""Initial Gaussians for fitting: from a coloured point cloud or random in a ball."""

from __future__ import annotations

import math

import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import rgb_to_sh0


def knn_mean_distance(points: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Mean distance ``[N]`` from each point to its ``k`` nearest neighbours (3DGS's scale init)."""
    n = points.shape[0]
    if n < 2:
        return torch.ones(n, dtype=points.dtype, device=points.device)
    k = min(k, n - 1)
    out = torch.empty(n, dtype=points.dtype, device=points.device)
    for s in range(0, n, chunk):
        d = torch.cdist(points[s : s + chunk], points)
        # k + 1 smallest: the first is the point itself (distance 0).
        out[s : s + chunk] = d.topk(k + 1, dim=1, largest=False).values[:, 1:].mean(1)
    return out


def raw_params(
    means: torch.Tensor, colors: torch.Tensor, sh_degree: int, opacity: float
) -> dict[str, torch.Tensor]:
    """Unconstrained 3DGS parameters (gsplat names) for points ``[N, 3]`` with colours ``[N, 3]``:
    isotropic scales = mean 3-NN distance, identity rotations, uniform opacity."""
    n = means.shape[0]
    if n == 0:
        raise ValidationError("points", "at least one point to initialise from", "0 points")
    dist = knn_mean_distance(means).clamp_min(1e-7)
    quats = torch.zeros(n, 4, dtype=means.dtype, device=means.device)
    quats[:, 0] = 1
    logit = math.log(opacity / (1 - opacity))
    params = {
        "means": means.clone(),
        "scales": torch.log(dist)[:, None].repeat(1, 3),
        "quats": quats,
        "opacities": torch.full((n,), logit, dtype=means.dtype, device=means.device),
        "sh0": rgb_to_sh0(colors.clamp(0, 1))[:, None, :].clone(),
    }
    k = (sh_degree + 1) ** 2
    if k > 1:
        params["shN"] = torch.zeros(n, k - 1, 3, dtype=means.dtype, device=means.device)
    return params


def random_ball(
    n: int, radius: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points uniform in the ball of ``radius`` and random colours (DreamGaussian's init)."""
    d = torch.randn(n, 3, generator=generator)
    d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
    r = radius * torch.rand(n, 1, generator=generator) ** (1 / 3)
    return d * r, torch.rand(n, 3, generator=generator)
