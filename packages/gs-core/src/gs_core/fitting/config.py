"""Settings of per-object 3DGS fitting (``gs3d fit``)."""

from __future__ import annotations

from typing import Literal

import pydantic

from gs_core.config import Config


class FitConfig(Config):
    """Classic multi-view 3DGS optimisation (Kerbl et al. 2023, Sec. 5-6) of one object.

    Learning rates follow the 3DGS reference: positions ``1.6e-4 -> 1.6e-6`` times the scene
    scale with exponential decay, SH DC ``2.5e-3`` (higher bands / 20), opacity ``0.05``,
    scales ``5e-3``, rotations ``1e-3``; the loss is ``(1 - l) L1 + l (1 - SSIM)``, ``l = 0.2``
    (Eq. 7). Densification and pruning are gsplat's ``DefaultStrategy`` (the 3DGS adaptive
    density control, Sec. 5.2) with its thresholds; its schedule is scaled to ``iterations``.
    """

    iterations: int = pydantic.Field(3000, gt=0)
    resolution: int = pydantic.Field(64, gt=0, description="views are resized to this (square)")
    views_per_step: int = pydantic.Field(1, gt=0, description="cameras rendered per step")
    sh_degree: int = pydantic.Field(0, ge=0, le=3)
    sh_increase_every: int = pydantic.Field(
        1000, gt=0, description="raise the active SH degree every N steps"
    )
    init: Literal["auto", "points", "random"] = "auto"
    init_max_points: int = pydantic.Field(20000, gt=0)
    init_random_count: int = pydantic.Field(5000, gt=0)
    init_radius: float = pydantic.Field(0.5, gt=0, description="ball radius of the random init")
    init_opacity: float = pydantic.Field(0.1, gt=0, lt=1)
    lr_means: float = 1.6e-4
    lr_means_final: float = 1.6e-6
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    lr_opacities: float = 0.05
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lambda_dssim: float = pydantic.Field(0.2, ge=0, le=1)
    background: Literal["random", "white", "black"] = "random"
    # DefaultStrategy (fractions of `iterations` where the reference uses absolute steps).
    densify: bool = True
    refine_start: float = pydantic.Field(500 / 30000, ge=0, le=1)
    refine_stop: float = pydantic.Field(15000 / 30000, ge=0, le=1)
    refine_every: int = pydantic.Field(100, gt=0)
    reset_every: int = pydantic.Field(3000, gt=0)
    grow_grad2d: float = 2e-4
    prune_opa: float = 0.005
    holdout_every: int = pydantic.Field(
        8, ge=0, description="every k-th view is held out (0: none)"
    )
    eval_every: int = pydantic.Field(
        0, ge=0, description="held-out PSNR every N steps (0: at the end)"
    )
    max_seconds: float | None = pydantic.Field(
        None, gt=0, description="stop early after this wall time"
    )
    backend: Literal["auto", "torch", "gsplat"] = "auto"
    seed: int = 0

    presets = {
        # The 3DGS reference schedule: 30k steps, densify 500..15k, SH degree 3.
        "paper": {"iterations": 30000, "resolution": 256, "sh_degree": 3},
        # Procedural objects on a CPU in minutes (benchmarks/fit.py).
        "small": {
            "iterations": 1200,
            "resolution": 64,
            "views_per_step": 2,
            "refine_every": 50,
            "reset_every": 100000,
        },
        "tiny": {
            "iterations": 30,
            "resolution": 32,
            "refine_every": 10,
            "init_max_points": 2000,
            "reset_every": 100000,
        },
    }
