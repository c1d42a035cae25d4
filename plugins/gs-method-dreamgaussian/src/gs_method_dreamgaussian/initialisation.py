"""Stage 1's starting Gaussians and their optimisers (gs_renderer.py: ``initialize``,
``create_from_pcd``, ``training_setup``)."""

from __future__ import annotations

import math

import torch

from gs_core.gaussians import Gaussians
from gs_core.points import knn
from gs_method_dreamgaussian.config import Stage1Config

PARAM_NAMES = ("means", "scales", "quats", "opacities", "sh0")


def ball_init(
    cfg: Stage1Config, generator: torch.Generator | None = None, device=None
) -> torch.nn.ParameterDict:
    """``num_points`` Gaussians uniform in the ball of ``init_radius``, as raw parameters.

    Returns ``means [N, 3]``, ``scales [N, 3]`` (log of the root mean squared distance to the
    3 nearest neighbours), ``quats [N, 4]`` (identity), ``opacities [N]`` (logit of
    ``init_opacity``) and ``sh0 [N, 1, 3]``. The official colours are ``SH2RGB(U[0, 1) / 255)``
    stored back as SH, i.e. a DC coefficient of ``U[0, 1) / 255``: grey 0.5 plus at most 0.001.
    """
    n = cfg.num_points
    u = torch.rand(4, n, generator=generator, dtype=torch.float64)
    phi = u[0] * 2 * math.pi
    cos_theta = u[1] * 2 - 1
    sin_theta = (1 - cos_theta.square()).clamp_min(0).sqrt()
    r = cfg.init_radius * u[2].pow(1.0 / 3.0)
    # The official axis assignment (z along the polar axis); a uniform ball is isotropic anyway.
    means = torch.stack([r * sin_theta * phi.cos(), r * sin_theta * phi.sin(), r * cos_theta], -1)
    sh0 = torch.rand(n, 1, 3, generator=generator) / 255.0
    means = means.float().to(device)
    with torch.no_grad():
        k = min(4, n)
        dist2, _ = knn(means[None], means[None], k)
        mean_d2 = dist2[0, :, 1:].mean(-1) if k > 1 else torch.ones(n, device=means.device)
        log_scale = mean_d2.clamp_min(1e-7).sqrt().log()
    quats = torch.zeros(n, 4, device=means.device)
    quats[:, 0] = 1.0
    logit = math.log(cfg.init_opacity / (1 - cfg.init_opacity))
    return torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter(means),
            "scales": torch.nn.Parameter(log_scale[:, None].repeat(1, 3)),
            "quats": torch.nn.Parameter(quats),
            "opacities": torch.nn.Parameter(torch.full((n,), logit, device=means.device)),
            "sh0": torch.nn.Parameter(sh0.to(means.device)),
        }
    )


def make_optimizers(
    params: torch.nn.ParameterDict, cfg: Stage1Config
) -> dict[str, torch.optim.Optimizer]:
    """One Adam per parameter (gsplat's strategy convention; Adam is per-element, so this is
    training_setup's single Adam with parameter groups). The means' rate is set every step
    from :func:`~gs_method_dreamgaussian.schedules.position_lr`. ``cfg.fused_adam`` picks
    torch's fused kernel (the same update)."""
    lrs = {
        "means": cfg.position_lr_init * cfg.position_lr_scale,
        "scales": cfg.scaling_lr,
        "quats": cfg.rotation_lr,
        "opacities": cfg.opacity_lr,
        "sh0": cfg.color_lr,
    }
    fused = cfg.fused_adam or None  # None: torch's default (foreach on CUDA)
    return {
        k: torch.optim.Adam([params[k]], lr=lr, eps=cfg.adam_eps, fused=fused)
        for k, lr in lrs.items()
    }


def activated(params: torch.nn.ParameterDict) -> Gaussians:
    """The render-ready Gaussians ``[N]`` of the raw parameters (differentiable; shapes only
    are checked, the activations guarantee the ranges)."""
    q = params["quats"]
    return Gaussians.unchecked(
        means=params["means"],
        quats=q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12),
        scales=params["scales"].exp(),
        opacities=torch.sigmoid(params["opacities"]),
        sh=params["sh0"],
    )
