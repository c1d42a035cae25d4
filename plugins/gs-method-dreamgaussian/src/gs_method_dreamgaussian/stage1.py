"""Stage 1: Gaussians by Zero123 score distillation (main.py's ``train_step``, 500 steps).

Each step (``step`` from 1, ``r = step / steps``):

1. the means' learning rate follows the log-linear schedule;
2. the input view is rendered at ``reference_size`` on white and compared with the input
   (``lambda_rgb`` MSE of rgb, ``lambda_alpha`` MSE of the mask, both times ``r`` while the
   warm-up is on);
3. ``novel_views`` random views (main.py's sampling) are rendered at 128 / 256 / 512 px on
   white or black and scored by Zero123 SDS: CFG 5, ``t = round((1 - r) 1000)`` in [20, 980],
   ``w = 1 - alpha_bar_t``, render latents sampled from the VAE posterior, sum reduction;
4. one Adam step per parameter, then densification from the novel view's screen-space
   gradients (:class:`~gs_method_dreamgaussian.densification.DreamGaussianStrategy`).

After the last step, Gaussians below opacity 0.01 or above scale 0.1 are removed.
All randomness comes from the global generator, which the caller seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from gs_core.devices import to_device_async
from gs_core.errors import GS3DError
from gs_core.gaussians import Gaussians
from gs_core.rendering import render
from gs_method_dreamgaussian.cameras import novel_resolution, reference_camera, sample_novel_views
from gs_method_dreamgaussian.config import DreamGaussianConfig
from gs_method_dreamgaussian.densification import DreamGaussianStrategy, prune_final
from gs_method_dreamgaussian.initialisation import activated, ball_init, make_optimizers
from gs_method_dreamgaussian.profiling import Profile
from gs_method_dreamgaussian.schedules import position_lr, timestep_schedule


@dataclass
class InputView:
    """The input as the optimisation sees it: ``rgb [1, 3, S, S]`` composited on white and
    ``alpha [1, 1, S, S]``, at the reference size ``S``."""

    rgb: torch.Tensor
    alpha: torch.Tensor


@dataclass
class Stage1Result:
    """The optimised Gaussians ``[N]`` (detached), the count after every step, what
    densification did in total and what the final prune removed."""

    gaussians: Gaussians
    counts: list[int]
    densified: dict[str, int] = field(default_factory=dict)
    final_pruned: int = 0


def run_stage1(
    cfg: DreamGaussianConfig,
    view: InputView,
    *,
    guidance: Any = None,
    reference: Any = None,
    profile: Profile | None = None,
) -> Stage1Result:
    """Optimise Gaussians for one input view.

    Args:
        guidance: the :class:`~gs_method_dreamgaussian.guidance.LoadedPrior` (``None`` only
            when ``cfg.stage1.sds`` is off).
        reference: the input's ``Zero123Reference`` (:func:`guidance.encode_input`).
        profile: timing sections (render, vae_encode, unet, vae_backward, render_backward,
            optimizer, densify).
    """
    s1, cam = cfg.stage1, cfg.camera
    device = view.rgb.device
    prof = profile or Profile(False, device)
    if s1.sds and (guidance is None or reference is None):
        raise GS3DError("stage 1: SDS is on (stage1.sds) but no Zero123 prior was given")
    sds = None
    if s1.sds:
        from gs_losses.guidance import SDS, SDSConfig

        sds = SDS(
            guidance.model,
            SDSConfig(
                guidance_scale=s1.guidance_scale,
                timesteps=timestep_schedule(s1),
                weighting="sds",
                reduction="sum",
            ),
        )

    params = ball_init(s1, device=device)
    optimizers = make_optimizers(params, s1)
    strategy = state = None
    if s1.densify:
        strategy = DreamGaussianStrategy.from_config(s1)
        strategy.check_sanity(params, optimizers)
        state = strategy.initialize_state(scene_scale=s1.scene_extent)
    ref_cam = reference_camera(cam, device=device)
    totals = {"duplicated": 0, "split": 0, "pruned": 0}
    counts: list[int] = []

    for step in range(1, s1.steps + 1):
        r = min(1.0, step / s1.steps)
        optimizers["means"].param_groups[0]["lr"] = position_lr(s1, step)
        g = activated(params)
        w = r if s1.warmup_reference else 1.0

        with prof("render"):
            ref = render(g, ref_cam, background=1.0, backend=cfg.backend)
        ref_rgb = ref.rgb.clamp(0, 1).permute(0, 3, 1, 2)
        ref_alpha = ref.alpha.permute(0, 3, 1, 2)
        loss = w * s1.lambda_rgb * F.mse_loss(ref_rgb, view.rgb)
        loss = loss + w * s1.lambda_alpha * F.mse_loss(ref_alpha, view.alpha)
        info = ref.meta

        sds_loss = images = None
        if sds is not None:
            views = sample_novel_views(cam, s1.novel_views)
            size = novel_resolution(s1, r)
            white = torch.rand(s1.novel_views) < s1.white_background_prob
            bg = to_device_async(white.float()[:, None].expand(-1, 3).contiguous(), device)
            with prof("render"):
                novel = render(
                    g, views.cameras(cam, size, device), background=bg, backend=cfg.backend
                )
            images = novel.rgb.clamp(0, 1).permute(0, 3, 1, 2)
            with prof("vae_encode"):
                latents = guidance.model.encode_images(images)
            cond = guidance.prior.camera_condition(
                reference,
                views.d_elevation,
                views.d_azimuth,
                0.0,
                reference_elevation=cam.input_elevation_deg,
            )
            with prof("unet"):
                sds_loss = (
                    s1.lambda_sds * sds.compute(latents=latents, condition=cond, step_ratio=r).loss
                )
            info = novel.meta

        if strategy is not None:
            strategy.step_pre_backward(params, optimizers, state, step, info)
        if sds_loss is not None and prof.enabled:
            # The same gradients in two passes, so the VAE's share can be timed.
            with prof("vae_backward"):
                (grad_images,) = torch.autograd.grad(sds_loss, images)
            with prof("render_backward"):
                (loss + (images * grad_images).sum()).backward()
        else:
            with prof("backward"):
                (loss if sds_loss is None else loss + sds_loss).backward()
        with prof("optimizer"):
            for opt in optimizers.values():
                opt.step()
                opt.zero_grad(set_to_none=True)
        if strategy is not None:
            with prof("densify"):
                done = strategy.step_post_backward(params, optimizers, state, step, info)
            for k, v in done.items():
                totals[k] += v
        counts.append(params["means"].shape[0])

    final = prune_final(params, optimizers, s1.final_prune_opacity, s1.final_prune_scale)
    if params["means"].shape[0] == 0:
        raise GS3DError(
            "stage 1 left no Gaussians: every one fell below opacity "
            f"{s1.final_prune_opacity} or above scale {s1.final_prune_scale}"
        )
    with torch.no_grad():
        gaussians = activated(params).detach().clone()
    gaussians.validate(check_values=True)
    return Stage1Result(gaussians=gaussians, counts=counts, densified=totals, final_pruned=final)
