"""Is a procedural teacher useful? Its samples on held-out objects against ground truth and the
copy / mirror baselines (:mod:`gs_core.evaluation.novel_views`), at guidance 1 and at its
official pipeline's scale, checked against the criteria a student or DreamGaussian needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from gs_core.errors import ValidationError
from gs_core.evaluation.novel_views import NovelViewReport, ViewPair, score_novel_views
from gs_priors.samplers import Sampler, sample

# The usefulness criteria (issue 16): far-view margin over the better baseline, pose right
# on asymmetric objects, and seeds that differ on unseen sides (per-pixel std x 255).
MIN_MARGIN_DB = 2.0
MIN_POSE_ACCURACY = 0.9
MIN_SEED_DIVERSITY = 1.0
IMAGEDREAM_AZIMUTHS = (0.0, 90.0, 180.0, 270.0)
ZERO123_EVAL_BATCH = 256
# The arithmetic of the evaluation's samples on a GPU: bf16 autocast (the default, as the
# students sample their teachers), or float32 with TF32 off. A CPU always runs float32.
PRECISIONS = ("bf16", "fp32")


def teacher_background(name: str) -> tuple[float, float, float]:
    """The flat colour ``name``'s views are composited on: Zero123++'s gray (its official
    background), white for Zero123 and ImageDream."""
    return (127 / 255,) * 3 if name == "zero123plus" else (1.0, 1.0, 1.0)


@contextlib.contextmanager
def _precision(prior, precision: str = "bf16") -> Iterator[None]:
    """Guidance weighs the conditional output by ``s`` and the unconditional by ``1 - s``, so
    at 4 it amplifies bf16's rounding sevenfold: ``fp32`` measures the samples without it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: one of {', '.join(PRECISIONS)}, got {precision!r}")
    dev = prior.device.type
    if precision == "bf16":
        with torch.autocast(dev, torch.bfloat16, enabled=dev == "cuda"):
            yield
        return
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(
            enabled=torch.backends.cudnn.enabled,
            benchmark=torch.backends.cudnn.benchmark,
            deterministic=torch.backends.cudnn.deterministic,
            allow_tf32=False,
        ):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def _images(prior, latents: torch.Tensor, size: int) -> torch.Tensor:
    x = prior.decode_latents(latents).float()
    if x.shape[-1] != size:
        x = F.interpolate(x, (size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1)


@torch.no_grad()
def zero123_predictor(
    prior,
    guidance_scale: float,
    steps: int = 50,
    sampler: Sampler = "ddim",
    precision: str = "bf16",
    guidance_rescale: float = 0.0,
):
    """A :data:`~gs_core.evaluation.novel_views.Predictor` drawing samples of Zero123 (DDIM, or
    another of :data:`gs_priors.samplers.SAMPLERS`; ``precision`` one of :data:`PRECISIONS`;
    ``guidance_rescale`` as in :class:`gs_priors.samplers.GuidedDenoiser`)."""

    def predict(inputs, d_elevation, d_azimuth, seed):
        dev = prior.device
        with _precision(prior, precision):
            ref = prior.encode_reference(inputs.to(dev))
            cond = prior.camera_condition(ref, d_elevation.to(dev), d_azimuth.to(dev))
            h = prior.image_size // prior.vae_scale_factor
            gen = torch.Generator(dev).manual_seed(int(seed))
            out = sample(
                prior,
                cond,
                (inputs.shape[0], 4, h, h),
                sampler=sampler,
                steps=steps,
                guidance_scale=guidance_scale,
                generator=gen,
                guidance_rescale=guidance_rescale,
            )
            return _images(prior, out.latents, inputs.shape[-1])

    return predict


def input_groups(pairs: Sequence[ViewPair]) -> list[list[int]]:
    """Indices of consecutive pairs sharing one input view."""
    groups: list[list[int]] = []
    for i, p in enumerate(pairs):
        prev = pairs[groups[-1][0]] if groups else None
        if prev is not None and (prev.object_id, prev.input_angles) == (
            p.object_id,
            p.input_angles,
        ):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _view_index(name: str, prior, pair: ViewPair) -> int:
    if name == "zero123plus":
        for k, (az, el) in enumerate(prior.views):
            if (
                abs((pair.d_azimuth - az + 180) % 360 - 180) < 1e-3
                and abs(pair.target_angles[1] - el) < 1e-3
            ):
                return k
    else:
        for k, az in enumerate(IMAGEDREAM_AZIMUTHS):
            if abs((pair.d_azimuth - az + 180) % 360 - 180) < 1e-3:
                return k
    raise ValidationError(
        "pairs",
        f"targets at the {name} views",
        f"{pair.object_id} at relative azimuth {pair.d_azimuth:.1f}, "
        f"elevation {pair.target_angles[1]:.1f}",
    )


@torch.no_grad()
def multiview_samples(
    prior,
    name: str,
    pairs: Sequence[ViewPair],
    seeds: Sequence[int],
    guidance_scale: float,
    steps: int = 50,
    batch_size: int = 32,
    progress: Callable[[str], None] | None = None,
    sampler: Sampler = "ddim",
    precision: str = "bf16",
    guidance_rescale: float = 0.0,
) -> dict[int, torch.Tensor]:
    """Samples of a multi-view teacher (``zero123plus`` / ``imagedream``) for ``pairs``: one
    draw of all views per input and seed, each pair given its view. ``[len(pairs), 3, H, W]``
    per seed. ``progress`` gets one line per sampler call (minutes each on a CPU)."""
    groups = input_groups(pairs)
    size = pairs[0].target_rgb.shape[-1]
    dev = prior.device
    out = {s: torch.empty(len(pairs), 3, size, size) for s in seeds}
    index = [[_view_index(name, prior, pairs[i]) for i in g] for g in groups]
    for start in range(0, len(groups), batch_size):
        chunk = groups[start : start + batch_size]
        inputs = torch.stack([pairs[g[0]].input_rgba for g in chunk]).to(dev)
        for seed in seeds:
            gen = torch.Generator(dev).manual_seed(int(seed) * 100003 + start)
            with _precision(prior, precision):
                if name == "zero123plus":
                    from gs_priors.zero123plus import untile_views

                    cond = prior.encode_reference(inputs)
                    res = sample(
                        prior,
                        cond,
                        prior.latent_shape(len(chunk)),
                        sampler=sampler,
                        steps=steps,
                        guidance_scale=guidance_scale,
                        generator=gen,
                        guidance_rescale=guidance_rescale,
                    )
                    views = untile_views(prior.decode_latents(res.latents).float())
                else:
                    from gs_priors.imagedream import orbit_cameras

                    ref = prior.encode_reference(inputs)
                    el = torch.tensor([pairs[g[0]].input_angles[1] for g in chunk])
                    az = torch.tensor(IMAGEDREAM_AZIMUTHS)
                    cams = orbit_cameras(el.repeat_interleave(4), az.repeat(len(chunk)))
                    cond = prior.condition(ref, cams.view(len(chunk), 4, -1).to(dev))
                    h = prior.image_size // prior.vae_scale_factor
                    res = sample(
                        prior,
                        cond,
                        (4 * len(chunk), 4, h, h),
                        sampler=sampler,
                        steps=steps,
                        guidance_scale=guidance_scale,
                        generator=gen,
                        guidance_rescale=guidance_rescale,
                    )
                    views = (
                        prior.decode_latents(res.latents)
                        .float()
                        .view(len(chunk), 4, 3, h * prior.vae_scale_factor, -1)
                    )
            for j, g in enumerate(chunk):
                for i, k in zip(g, index[start + j], strict=True):
                    v = views[j, k : k + 1]
                    if v.shape[-1] != size:
                        v = F.interpolate(v, (size, size), mode="bilinear", antialias=True)
                    out[seed][i] = v[0].clamp(0, 1).cpu()
            if progress is not None:
                progress(
                    f"{name} guidance {guidance_scale:g}: seed {seed}, inputs "
                    f"{start + 1}-{start + len(chunk)} of {len(groups)} sampled"
                )
    return out


def evaluate_teacher(
    prior,
    name: str,
    pairs: Sequence[ViewPair],
    guidance_scales: Sequence[float],
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 50,
    batch_size: int | None = None,
    progress: Callable[[str], None] | None = None,
    sampler: Sampler = "ddim",
    precision: str = "bf16",
    guidance_rescale: float = 0.0,
) -> dict[float, NovelViewReport]:
    """One :class:`NovelViewReport` per guidance scale (background: the prior's own).
    ``batch_size``: inputs per sampler call (default: 256 for Zero123's single views, 64 for
    the multi-view priors, which draw 4-6 views per input). ``progress``: a line per sampler
    call of the multi-view priors and per guidance scale. ``sampler``: DDIM by default (the
    usefulness checks' protocol), or another of :data:`gs_priors.samplers.SAMPLERS`, e.g.
    ``ddpm`` (ancestral, like Zero123++'s shipped Euler-ancestral scheduler) to see whether a
    result is the deterministic sampler's. ``precision``: bf16 autocast on a GPU by default, or
    ``fp32`` (TF32 off) to see whether a result is bf16's rounding, which guidance amplifies.
    ``guidance_rescale``: phi of :class:`gs_priors.samplers.GuidedDenoiser` (default 0, the
    checks' protocol), to see whether guidance's cost is its over-saturation."""
    if batch_size is None:
        # The procedural U-Nets are launch-bound at small batches: the third run's Zero123
        # evaluation, 64 inputs per call, did not finish inside its lease.
        batch_size = ZERO123_EVAL_BATCH if name == "zero123" else 64
    background = teacher_background(name)
    reports = {}
    for g in guidance_scales:
        if name == "zero123":
            reports[g] = score_novel_views(
                zero123_predictor(prior, g, steps, sampler, precision, guidance_rescale),
                pairs,
                seeds=seeds,
                batch_size=batch_size,
                background=background,
            )
        else:
            samples = multiview_samples(
                prior,
                name,
                pairs,
                seeds,
                g,
                steps,
                batch_size,
                progress=progress,
                sampler=sampler,
                precision=precision,
                guidance_rescale=guidance_rescale,
            )
            reports[g] = score_novel_views(None, pairs, background=background, samples=samples)
        if progress is not None:
            progress(f"{name} guidance {g:g}: scored")
    return reports


def spread_subset(pairs: Sequence[ViewPair], n: int | None) -> list[ViewPair]:
    """At most ``n`` of ``pairs``, evenly spaced through the list (which runs object by object),
    so a subset still covers every part of the held-out set; all of them for ``n`` None. A CPU
    evaluates Zero123's 888 held-out pairs in about 80 minutes at guidance 3 and 35 at
    guidance 1 (the conditional branch alone), per seed."""
    if n is None or n >= len(pairs):
        return list(pairs)
    if n < 1:
        raise ValueError(f"n: at least 1 pair, got {n}")
    step = (len(pairs) - 1) / max(n - 1, 1)
    return [pairs[round(i * step)] for i in range(n)]


def usefulness(
    reports: dict[float, NovelViewReport],
    paper_scale: float,
    quarter: NovelViewReport | None = None,
) -> dict[str, dict]:
    """The checks of a useful teacher, each ``{"value", "required", "passed"}``.

    The pose check is the issue's: samples turned exactly +-90 degrees, from ``quarter`` (a
    report at the official scale on :func:`~gs_core.evaluation.novel_views.quarter_turn_pairs`,
    for Zero123, whose held-out pairs turn by random angles) or from the official scale's own
    pairs at +-90 (the multi-view layouts have them); without any, the far pairs, then all."""
    paper, one = reports[paper_scale], reports[1.0]
    pose = paper.pose_accuracy if paper.pose_accuracy_far is None else paper.pose_accuracy_far
    for source in (paper, quarter):
        if source is not None and source.pose_accuracy_quarter is not None:
            pose = source.pose_accuracy_quarter
    checks = {
        "far_margin_db": (paper.margin_far_db, MIN_MARGIN_DB, paper.margin_far_db >= MIN_MARGIN_DB),
        "paper_scale_vs_1_far_db": (
            paper.methods["teacher"].psnr_far - one.methods["teacher"].psnr_far,
            0.0,
            paper.methods["teacher"].psnr_far >= one.methods["teacher"].psnr_far,
        ),
        # As the issue words it: a +90 degree sample against the +90 and -90 ground truths.
        "pose_accuracy": (pose, MIN_POSE_ACCURACY, pose is not None and pose >= MIN_POSE_ACCURACY),
        "seed_diversity_far": (
            paper.seed_diversity_far,
            MIN_SEED_DIVERSITY,
            paper.seed_diversity_far is not None and paper.seed_diversity_far >= MIN_SEED_DIVERSITY,
        ),
    }
    return {k: {"value": v, "required": r, "passed": bool(p)} for k, (v, r, p) in checks.items()}
