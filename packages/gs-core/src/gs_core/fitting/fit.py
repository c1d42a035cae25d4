"""Per-object 3DGS fitting: optimise Gaussians against posed RGBA views.

The loop is the 3DGS reference (Kerbl et al. 2023): Adam on unconstrained parameters, the
``(1 - l) L1 + l D-SSIM`` loss (Eq. 7), exponential position-LR decay, SH bands enabled one at a
time, and adaptive density control through gsplat's ``DefaultStrategy``. Targets are composited
on a fresh random background each step (unless configured otherwise), so the alpha of the fit
must match the views' alpha rather than painting the background into the object.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from gs_core.cameras import Cameras
from gs_core.errors import GS3DError, ValidationError
from gs_core.fitting.config import FitConfig
from gs_core.fitting.init import random_ball, raw_params
from gs_core.gaussians import Gaussians


@dataclass
class FitResult:
    """The fitted Gaussians, per-eval history and final held-out metrics."""

    gaussians: Gaussians
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0


def _gaussians(params: dict[str, torch.Tensor]) -> Gaussians:
    sh = params["sh0"] if "shN" not in params else torch.cat([params["sh0"], params["shN"]], 1)
    return Gaussians.unchecked(
        means=params["means"],
        quats=F.normalize(params["quats"], dim=-1),
        scales=torch.exp(params["scales"]),
        opacities=torch.sigmoid(params["opacities"]),
        sh=sh,
    )


def _default_strategy():
    try:
        from gsplat.strategy import DefaultStrategy
    except ImportError:
        raise GS3DError(
            "fitting densifies with gsplat's DefaultStrategy (pure PyTorch, runs on CPU too): "
            "pip install 'gs3d-core[cuda]' to get gsplat, or set densify=false"
        ) from None
    return DefaultStrategy


def scene_scale(cameras: Cameras) -> float:
    """gsplat's scene scale: 1.1 x the largest camera distance from the cameras' centroid, or
    from the origin for object-centric orbits (all cameras around one object)."""
    c = cameras.centers.reshape(-1, 3).double()
    spread = (c - c.mean(0)).norm(dim=1).max()
    return float(1.1 * max(float(spread), float(c.norm(dim=1).max())))


def _check_views(rgba: torch.Tensor, cameras: Cameras, name: str) -> None:
    if not isinstance(rgba, torch.Tensor) or rgba.ndim != 4 or rgba.shape[-1] != 4:
        raise ValidationError(
            name, "RGBA views [V, H, W, 4] in [0, 1]", f"shape {tuple(getattr(rgba, 'shape', ()))}"
        )
    if cameras.batch_shape or cameras.n_cameras != rgba.shape[0]:
        raise ValidationError(
            f"{name} cameras", f"{rgba.shape[0]} cameras without batch dims", repr(cameras)
        )
    if (cameras.height, cameras.width) != tuple(rgba.shape[1:3]):
        raise ValidationError(
            f"{name} cameras",
            f"size {rgba.shape[2]}x{rgba.shape[1]} like the views",
            f"{cameras.width}x{cameras.height}",
        )


@torch.no_grad()
def evaluate(
    gaussians: Gaussians,
    rgba: torch.Tensor,
    cameras: Cameras,
    backend: str = "auto",
    chunk: int = 8,
) -> dict[str, float]:
    """Mean PSNR / SSIM of renders vs views ``[V, H, W, 4]``, both on a white background."""
    from gs_core.metrics import psnr, ssim
    from gs_core.rendering import render

    p, s = [], []
    for a in range(0, rgba.shape[0], chunk):
        cams = cameras.select(slice(a, a + chunk))
        out = render(gaussians, cams.to(gaussians.device), background=1.0, backend=backend)
        gt = rgba[a : a + chunk].to(gaussians.device)
        gt_rgb = gt[..., :3] * gt[..., 3:] + (1 - gt[..., 3:])
        pred = out.rgb.clamp(0, 1)
        p.append(psnr(pred, gt_rgb))
        s.append(
            ssim(pred, gt_rgb)
            if min(rgba.shape[1:3]) >= 11
            else torch.full_like(p[-1], float("nan"))
        )
    return {"psnr": float(torch.cat(p).mean()), "ssim": float(torch.cat(s).mean())}


def fit_gaussians(
    rgba: torch.Tensor,
    cameras: Cameras,
    config: FitConfig | None = None,
    points: torch.Tensor | None = None,
    colors: torch.Tensor | None = None,
    eval_rgba: torch.Tensor | None = None,
    eval_cameras: Cameras | None = None,
    device: str | torch.device = "cpu",
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> FitResult:
    """Fit Gaussians to ``rgba [V, H, W, 4]`` (straight alpha, [0, 1]) seen by ``cameras``.

    Initialises from ``points [P, 3]`` / ``colors [P, 3]`` when given (and ``config.init`` is
    not ``"random"``), else uniformly in a ball. ``eval_rgba``/``eval_cameras`` are held-out
    views scored every ``config.eval_every`` steps and at the end. ``callback(step, info)`` is
    called after each step (progress bars).
    """
    from gs_core.metrics import ssim_map
    from gs_core.rendering import render

    cfg = config or FitConfig()
    _check_views(rgba, cameras, "rgba")
    if eval_rgba is not None:
        if eval_cameras is None:
            raise ValidationError("eval_cameras", "cameras of the held-out views", "None")
        _check_views(eval_rgba, eval_cameras, "eval_rgba")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.init == "points" and points is None:
        raise ValidationError("points", "a point cloud for init='points'", "None")
    if points is not None and cfg.init != "random":
        pts = points.float()
        cols = colors.float() if colors is not None else torch.full_like(pts, 0.5)
        if pts.ndim != 2 or pts.shape[1] != 3 or cols.shape != pts.shape:
            raise ValidationError(
                "points/colors", "[P, 3] each", f"{tuple(pts.shape)} / {tuple(cols.shape)}"
            )
        if len(pts) > cfg.init_max_points:
            keep = torch.randperm(len(pts), generator=gen)[: cfg.init_max_points]
            pts, cols = pts[keep], cols[keep]
    else:
        pts, cols = random_ball(cfg.init_random_count, cfg.init_radius, gen)
    init = raw_params(pts.to(device), cols.to(device), cfg.sh_degree, cfg.init_opacity)
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in init.items()})
    scale = scene_scale(cameras)
    lrs = {
        "means": cfg.lr_means * scale,
        "scales": cfg.lr_scales,
        "quats": cfg.lr_quats,
        "opacities": cfg.lr_opacities,
        "sh0": cfg.lr_sh0,
        "shN": cfg.lr_shN,
    }
    optimizers = {
        k: torch.optim.Adam([{"params": params[k], "lr": lrs[k], "name": k}], eps=1e-15)
        for k in params
    }
    T = cfg.iterations
    strategy = state = None
    if cfg.densify:
        strategy = _default_strategy()(
            prune_opa=cfg.prune_opa,
            grow_grad2d=cfg.grow_grad2d,
            refine_start_iter=int(cfg.refine_start * T),
            refine_stop_iter=int(cfg.refine_stop * T),
            refine_every=cfg.refine_every,
            reset_every=cfg.reset_every,
        )
        strategy.check_sanity(params, optimizers)
        state = strategy.initialize_state(scene_scale=scale)

    views = rgba.float().to(device)
    cams = cameras.to(device)
    V = views.shape[0]
    B = min(cfg.views_per_step, V)
    order = torch.randperm(V, generator=gen)
    cursor = 0
    decay = (cfg.lr_means_final / cfg.lr_means) ** (1.0 / max(T, 1))
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    step = 0
    for step in range(T):
        if cursor + B > V:
            order = torch.randperm(V, generator=gen)
            cursor = 0
        idx = order[cursor : cursor + B]
        cursor += B
        gt = views[idx]
        if cfg.background == "random":
            bg = torch.rand(B, 3, generator=gen).to(device)
        else:
            bg = torch.full((B, 3), 1.0 if cfg.background == "white" else 0.0, device=device)
        target = gt[..., :3] * gt[..., 3:] + bg[:, None, None, :] * (1 - gt[..., 3:])
        deg = min(step // cfg.sh_increase_every, cfg.sh_degree)
        out = render(
            _gaussians(params), cams.select(idx), background=bg, sh_degree=deg, backend=cfg.backend
        )
        pred = out.rgb
        l1 = (pred - target).abs().mean()
        loss = l1
        if cfg.lambda_dssim > 0:
            d_ssim = (
                1
                - ssim_map(
                    pred.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2), padding="same"
                ).mean()
            )
            loss = (1 - cfg.lambda_dssim) * l1 + cfg.lambda_dssim * d_ssim
        info = out.meta
        if strategy is not None:
            strategy.step_pre_backward(params, optimizers, state, step, info)
        loss.backward()
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        for g in optimizers["means"].param_groups:
            g["lr"] *= decay
        if strategy is not None:
            strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        elapsed = time.perf_counter() - t0
        last = step == T - 1 or (cfg.max_seconds is not None and elapsed >= cfg.max_seconds)
        rec: dict[str, Any] = {
            "loss": float(loss.detach()),
            "gaussians": len(params["means"]),
            "seconds": elapsed,
        }
        if eval_rgba is not None and (
            (cfg.eval_every and (step + 1) % cfg.eval_every == 0) or last
        ):
            rec.update(
                evaluate(_gaussians(params).detach(), eval_rgba, eval_cameras, backend=cfg.backend)
            )
            rec["step"] = step + 1
            history.append(rec)
        if callback is not None:
            callback(step, rec)
        if last:
            break
    g = _gaussians({k: v.detach() for k, v in params.items()})
    # Validate once at the end: the activations guarantee the ranges, this catches NaN/Inf.
    g = Gaussians(g.means, g.quats, g.scales, g.opacities, g.sh)
    metrics = {k: v for k, v in history[-1].items() if k in ("psnr", "ssim")} if history else {}
    if math.isnan(metrics.get("ssim", 0.0)):
        metrics.pop("ssim")
    return FitResult(
        gaussians=g,
        history=history,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        steps=step + 1,
    )
