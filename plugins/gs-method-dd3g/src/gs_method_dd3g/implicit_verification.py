"""Implicit verification ``L_IV`` (Eq. 5, 8): multi-view SDS of the student's renders through
the teacher, used as a verifier. The renders are at random views (a set of ``n`` views 360/n
apart, first azimuth in [-180, 180], pitch in [-5, 5]) on random backgrounds (Eq. 8); ``t`` is
uniform in [20, 300] so the verifier checks the sample without repainting it (the 'iv' ablation
anneals it after ProlificDreamer, V-C). gs_losses' SDS does the mathematics (one ``t`` per object
shared by its views, ``w(t) = 1 - alpha_bar_t``), normalised per latent entry (``iv_reduction``)."""

from __future__ import annotations

import torch

from gs_core.gaussians import Gaussians
from gs_core.rendering import render
from gs_losses.terms import LossTerms
from gs_method_dd3g.cameras import orbit_views, random_background, random_verification_views


def verification_timesteps(config, num_train_timesteps: int):
    """Where the verifier samples ``t``: ``iv_t_range`` (IV-A), except in the 'iv' ablation with
    ``iv_only_schedule='prolificdreamer'`` (V-C: the redesign after ProlificDreamer [23])."""
    from gs_losses.guidance import TimestepSchedule

    if config.objective == "iv" and config.iv_only_schedule == "prolificdreamer":
        # gs_losses' drop_max defaults are ProlificDreamer's: U[20, 980], then U[20, 500]
        # from 20% of training.
        return TimestepSchedule(anneal="drop_max")
    t_min, t_max = config.iv_t_range
    n = num_train_timesteps
    return TimestepSchedule(t_range=(t_min / n, t_max / n))


def verification_sds(teacher, config):
    """gs_losses' :class:`SDS` over ``teacher`` with DD3G's settings from ``config``."""
    from gs_losses.guidance import SDS, SDSConfig

    return SDS(
        teacher,
        SDSConfig(
            guidance_scale=config.iv_guidance_scale,
            timesteps=verification_timesteps(config, teacher.num_train_timesteps),
            weighting=config.iv_weighting,
            reduction=config.iv_reduction,
        ),
    )


def implicit_verification(
    gaussians: Gaussians,
    input_images: torch.Tensor,
    teacher,
    sds,
    config,
    generator: torch.Generator | None = None,
    references=None,
    step_ratio: float | None = None,
) -> LossTerms:
    """``gaussians [B]``, the inputs II ``[B, 4, H, W]`` -> ``{"iv": surrogate}`` whose gradient
    is the verifier's ``w(t) (eps_hat - eps)`` on the renders' latents.

    ``references``: a callable giving the teacher's encoding of these inputs (``generator`` ->
    ``ImageDreamReference``, e.g. a bound :meth:`VerifierReferences.reference`); by default
    ``input_images`` are encoded here. ``step_ratio``: the training progress in ``[0, 1]``,
    needed by an annealed schedule (:func:`verification_timesteps`)."""
    b = input_images.shape[0]
    dev = gaussians.means.device
    v = config.num_views
    # Views drawn on the host (a CUDA generator draws on its device and is read back once).
    az, el = random_verification_views(
        b, v, config.iv_azimuth_range, config.iv_pitch_range, generator, "cpu"
    )
    size = int(teacher.image_size)
    cams = orbit_views(az, el, config.camera_radius, config.fov_deg, size, device=dev)
    if config.iv_random_background:
        bg = random_background((b, 1, 3), generator, dev)
    else:
        bg = torch.ones(b, 1, 3, device=dev)
    r = render(gaussians, cams, background=bg)
    renders = r.rgb.permute(0, 1, 4, 2, 3)  # [B, V, 3, H, W]
    with torch.no_grad():
        if references is None:
            ref = teacher.encode_reference(
                input_images.to(teacher.device).float(), generator=generator
            )
        else:
            ref = references(generator)
        cond = teacher.condition(ref, cams)
    return {"iv": sds(renders.float(), cond, generator=generator, step_ratio=step_ratio)["sds"]}


__all__ = ["implicit_verification", "verification_sds", "verification_timesteps"]
