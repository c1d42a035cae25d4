"""A picture of a teacher's samples: for a few held-out inputs, the input and the true views
above the samples at each guidance scale, from one seed - what the usefulness numbers measure,
to look at."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gs_core.evaluation.novel_views import ViewPair
from gs_core.imaging import contact_sheet
from gs_priors.samplers import Sampler
from gs_priors.teachers.evaluation import (
    input_groups,
    multiview_samples,
    teacher_background,
    zero123_predictor,
)


def _spread(n_items: int, n: int) -> list[int]:
    """``min(n, n_items)`` indices spread evenly over ``range(n_items)``, first and last kept."""
    n = min(n, n_items)
    step = (n_items - 1) / max(n - 1, 1)
    return sorted({round(i * step) for i in range(n)})


def sheet_pairs(pairs: Sequence[ViewPair], inputs: int, views: int = 8) -> list[ViewPair]:
    """The pairs of ``inputs`` input views spread evenly through ``pairs`` (which run object by
    object), each input with at most ``views`` of its pairs, spread evenly through them in
    order (a multi-view layout's 4-6 all; Zero123's held-out inputs have 37 each)."""
    if inputs < 1 or views < 1:
        raise ValueError(f"inputs, views: at least 1 each, got {inputs}, {views}")
    groups = input_groups(pairs)
    return [
        pairs[groups[k][j]]
        for k in _spread(len(groups), inputs)
        for j in _spread(len(groups[k]), views)
    ]


@torch.no_grad()
def _samples(prior, name, pairs, scale, seed, steps, sampler, precision, rescale) -> torch.Tensor:
    if name != "zero123":
        return multiview_samples(
            prior,
            name,
            pairs,
            (seed,),
            scale,
            steps,
            sampler=sampler,
            precision=precision,
            guidance_rescale=rescale,
        )[seed]
    predict = zero123_predictor(prior, scale, steps, sampler, precision, rescale)
    out = []
    for g in input_groups(pairs):
        inputs = torch.stack([pairs[i].input_rgba for i in g])
        d_el = torch.tensor([pairs[i].d_elevation for i in g])
        d_az = torch.tensor([pairs[i].d_azimuth for i in g])
        out.append(predict(inputs, d_el, d_az, seed).cpu())
    return torch.cat(out)


def sample_sheet(
    prior,
    name: str,
    pairs: Sequence[ViewPair],
    guidance_scales: Sequence[float],
    *,
    inputs: int = 4,
    views: int = 8,
    seed: int = 0,
    steps: int = 50,
    sampler: Sampler = "ddim",
    precision: str = "bf16",
    guidance_rescale: float = 0.0,
    tile: int = 96,
    background: Sequence[float] | None = None,
) -> np.ndarray:
    """One uint8 image ``[H, W, 3]``: per input of :func:`sheet_pairs` (``inputs``, ``views``
    each), a row with the input
    and its true target views (labelled by relative azimuth and elevation), then a row of
    samples per guidance scale (labelled ``g <scale>``, the input's tile left blank). Tiles are
    resized to ``tile`` px; ``background`` is the composite colour of inputs and blanks (default:
    :func:`~gs_priors.teachers.evaluation.teacher_background`, the pairs' own). ``sampler``,
    ``precision`` and ``guidance_rescale`` draw the samples as
    :func:`~gs_priors.teachers.evaluation.evaluate_teacher` does."""
    if background is None:
        background = teacher_background(name)
    chosen = sheet_pairs(pairs, inputs, views)
    samples = {
        g: _samples(prior, name, chosen, g, seed, steps, sampler, precision, guidance_rescale)
        for g in guidance_scales
    }
    groups = input_groups(chosen)
    ncols = 1 + max(len(g) for g in groups)
    bg = torch.tensor(background, dtype=torch.float32).view(3, 1, 1)

    def fit(x: torch.Tensor) -> np.ndarray:  # [C, h, w] -> [tile, tile, C]
        x = x.float()
        if x.shape[0] == 4:  # an RGBA input, composited as the targets are
            x = x[:3] * x[3:] + bg * (1 - x[3:])
        x = F.interpolate(x[None], (tile, tile), mode="bilinear", antialias=True)[0]
        return x.clamp(0, 1).permute(1, 2, 0).numpy()

    blank = np.broadcast_to(np.asarray(background, np.float32), (tile, tile, 3))
    images, labels = [], []

    def add_row(tiles: list, heads: list[str]) -> None:
        images.extend(tiles + [blank] * (ncols - len(tiles)))
        labels.extend(heads + [""] * (ncols - len(heads)))

    for group in groups:
        p0 = chosen[group[0]]
        add_row(
            [fit(p0.input_rgba)] + [fit(chosen[i].target_rgb) for i in group],
            [p0.object_id[:15]]
            + [f"{chosen[i].d_azimuth:+.0f} {chosen[i].d_elevation:+.0f}" for i in group],
        )
        for g in guidance_scales:
            add_row([blank] + [fit(samples[g][i]) for i in group], [f"g {g:g}, seed {seed}"])
    return contact_sheet(images, ncols=ncols, labels=labels, background=background)


__all__ = ["sample_sheet", "sheet_pairs"]
