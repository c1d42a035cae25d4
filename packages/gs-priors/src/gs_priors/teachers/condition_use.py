"""Does a teacher's condition help on objects it never saw? The denoising error of the ``x0`` it
implies with the input's condition against its null condition (the unconditional branch of
classifier-free guidance), on the same batch, noise and timesteps.

Guidance extrapolates along the conditional minus the unconditional prediction. Where the
condition makes the prediction worse than no condition at all, guidance amplifies that error:
the session-61 probe of the twenty-second Zero123++ pack found its conditional error at t = 50
three times its unconditional one on unseen objects, while on its training objects the
condition helped at every timestep (it had memorised 3,000 objects through its reference
attention), and its samples at guidance 4 trailed guidance 1. Run on a batch of training
objects and on one of unseen objects (:func:`condition_use_split`) this tells memorisation from
a condition that generalises, with no sampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gs_priors.forward_process import add_noise
from gs_priors.teachers.training import conditioned_batch, implied_x0

DEFAULT_TIMESTEPS = (50, 150, 300, 500, 700, 900)


@torch.no_grad()
def condition_use(
    prior, name: str, batch, timesteps: Sequence[int] = DEFAULT_TIMESTEPS, seed: int = 0
) -> dict[int, dict[str, float]]:
    """Per timestep: the mean squared error of the implied ``x0`` (latent space) with the
    batch's condition (``conditional``) and with the null condition (``unconditional``), and the
    share of objects where the condition does better (``condition_better``; at or below 0.5 the
    condition does not help). ``batch``: a :data:`~gs_priors.teachers.data.BATCHES` batch of
    ``name``; views denoised jointly count as one object."""
    # The encoders' posterior samples and Zero123++'s reference noise draw from the global
    # generators: seeded here (and restored after), so batches score on the same draws.
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return _condition_use(prior, name, batch, timesteps, seed)


def _condition_use(prior, name: str, batch, timesteps: Sequence[int], seed: int):
    x0, cond, null, per = conditioned_batch(prior, name, batch)
    x0 = x0.float()
    gen = torch.Generator(x0.device).manual_seed(seed)
    objects = x0.shape[0] // per
    out = {}
    for t_value in timesteps:
        t = torch.full((objects,), int(t_value), device=x0.device).repeat_interleave(per)
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
        xt = add_noise(x0, noise, t, prior.alphas_cumprod)

        def x0_error(c, xt=xt, t=t) -> torch.Tensor:  # [objects]
            err = (implied_x0(prior, xt, t, c) - x0).pow(2).flatten(1).mean(1)
            return err.view(objects, per).mean(1)

        conditional, unconditional = x0_error(cond), x0_error(null)
        out[int(t_value)] = {
            "conditional": float(conditional.mean()),
            "unconditional": float(unconditional.mean()),
            "condition_better": float((conditional < unconditional).float().mean()),
        }
    return out


def condition_use_split(
    prior,
    name: str,
    batches: dict[str, object],
    timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
    seed: int = 0,
) -> dict[str, dict[int, dict[str, float]]]:
    """:func:`condition_use` of each named batch (e.g. ``{"train": ..., "unseen": ...}``), with
    the same noise draws for each, so the rows compare."""
    return {key: condition_use(prior, name, b, timesteps, seed) for key, b in batches.items()}


def lowest_gain(result: dict[int, dict[str, float]]) -> tuple[int, float]:
    """The timestep where the condition helps least and its gain in dB,
    ``10 log10(unconditional / conditional)`` (negative: the condition hurts)."""

    def gain(row: dict[str, float]) -> float:
        return 10 * math.log10(max(row["unconditional"], 1e-12) / max(row["conditional"], 1e-12))

    t = min(result, key=lambda k: gain(result[k]))
    return t, gain(result[t])


def condition_use_record(
    result: dict[str, dict[int, dict[str, float]]],
) -> dict[str, dict]:
    """:func:`condition_use_split`'s result as JSON: ``splits`` (timesteps as strings) and each
    split's ``least_gain_db`` (:func:`lowest_gain`)."""
    return {
        "splits": {k: {str(t): r for t, r in v.items()} for k, v in result.items()},
        "least_gain_db": {k: lowest_gain(v)[1] for k, v in result.items()},
    }


__all__ = [
    "DEFAULT_TIMESTEPS",
    "condition_use",
    "condition_use_record",
    "condition_use_split",
    "lowest_gain",
]
