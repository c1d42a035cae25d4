"""Sampling any :class:`~gs_priors.prior.DiffusionPrior` under classifier-free guidance, through
diffusers schedulers built on the prior's own noise schedule and prediction type.

* ``"ddim"`` - deterministic DDIM (Song et al. 2021, ``eta = 0``): the discretised
  probability-flow ODE, so a start noise maps to one output (DD3G's teacher trajectories);
* ``"ddpm"`` - ancestral DDPM sampling (Ho et al. 2020), stochastic through ``generator``;
* ``"dpmpp"`` - DPM-Solver++ multistep (Lu et al. 2022, 2nd order), good samples in 20-25 steps;
* ``"euler_a"`` - Euler ancestral (Karras et al. 2022's Euler step with DDPM's ancestral noise),
  the scheduler Zero123++ ships (:func:`gs_priors.zero123plus.official_scheduler`; its pipeline
  samples 75 steps). Its ``linspace`` timesteps may fall between integers: the prior sees the
  nearest integer timestep, the scheduler keeps its own noise level.

Guidance is ``out_u + s (out_c - out_u)`` on the prior's raw output (epsilon, v or x0): the
conversions between prediction types are affine in the output with weights that sum to one, so
this equals guiding in epsilon space, and the scheduler converts.

:func:`refine` is DreamGaussian's image-to-image (``guidance/zero123_utils.py``, ``refine``):
``steps`` DDIM steps of which the first ``int(steps * strength)`` are skipped - the input latents
are noised to the timestep at that index and denoised from there. A large strength changes
little (DreamGaussian's stage 2 uses 0.8 -> 0.95, i.e. 10 -> 3 of 50 steps); ``strength = 1``
skips every step and returns the input; ``strength = 0`` starts from pure noise, ignoring it.

``graphed=True`` replays the guided denoiser call as a CUDA graph
(:class:`gs_core.cuda_graphs.GraphedCallable`): at batch 1 a U-Net is bound by kernel launches,
and its shapes are static across steps. The scheduler's update stays eager (a few element-wise
kernels). A prior that draws random numbers inside ``model_output`` (Zero123++'s fresh
reference noise) draws them from torch's default CUDA generator in the graph.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import Any, Literal

import torch

from gs_core.errors import ValidationError
from gs_priors.prior import Condition, DiffusionPrior, check_prior

Sampler = Literal["ddim", "ddpm", "dpmpp", "euler_a"]
SAMPLERS: tuple[str, ...] = ("ddim", "ddpm", "dpmpp", "euler_a")
# Spacing settings a prior's own scheduler config may carry (DiffusersPrior.scheduler_config).
SPACING_KEYS = ("timestep_spacing", "steps_offset", "set_alpha_to_one")
# Stable Diffusion's and Zero123's: DDIM at 50 steps visits 981, 961, ..., 1.
DEFAULT_SPACING = {"timestep_spacing": "leading", "steps_offset": 1, "set_alpha_to_one": False}


@dataclass
class SampleResult:
    """A finished sample: ``latents`` ``[B, C, h, w]`` (float32, the model's latent space),
    ``noise`` the start of the trajectory (``x_T``, or the noised input of :func:`refine`), and
    ``timesteps`` ``[S]`` the timesteps that were denoised."""

    latents: torch.Tensor
    noise: torch.Tensor
    timesteps: torch.Tensor

    def endpoints(self) -> dict[str, torch.Tensor]:
        """``{"noise": x_T, "output": x_0}`` - one pair of a teacher's ODE trajectory."""
        return {"noise": self.noise, "output": self.latents}


# Per schedule tensor (a prior keeps one per device): reading a GPU schedule back to the host
# synchronises, and every refinement of DreamGaussian's stage 2 builds a scheduler. Keyed by
# id with a weak reference that proves the tensor is the same one (tensors compare by value).
_BETAS: dict[int, tuple[weakref.ref, Any]] = {}


def _betas(alphas_cumprod: torch.Tensor):
    hit = _BETAS.get(id(alphas_cumprod))
    if hit is not None and hit[0]() is alphas_cumprod:
        return hit[1]
    ab = alphas_cumprod.detach().double().cpu()
    prev = torch.cat([ab.new_ones(1), ab[:-1]])
    betas = (1 - ab / prev).clamp(0.0, 0.999).numpy()
    betas.setflags(write=False)
    if len(_BETAS) >= 16:  # dead priors' entries
        _BETAS.clear()
    _BETAS[id(alphas_cumprod)] = (weakref.ref(alphas_cumprod), betas)
    return betas


def make_scheduler(prior: DiffusionPrior, sampler: Sampler = "ddim", **options: Any):
    """A diffusers scheduler on ``prior``'s ``alphas_cumprod`` and prediction type.

    ``options`` (``timestep_spacing``, ``steps_offset``, ``set_alpha_to_one``, or any other
    argument of the scheduler class) override the prior's ``scheduler_config`` where it has one,
    else :data:`DEFAULT_SPACING`.
    """
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
    )

    prior = check_prior(prior)
    own = getattr(prior, "scheduler_config", None) or {}
    spacing = {k: own.get(k, v) for k, v in DEFAULT_SPACING.items()}
    common = {
        "num_train_timesteps": prior.num_train_timesteps,
        "trained_betas": _betas(prior.alphas_cumprod),
        "prediction_type": prior.prediction_type,
        "timestep_spacing": spacing["timestep_spacing"],
        "steps_offset": spacing["steps_offset"],
    }
    if sampler == "ddim":
        kwargs = {**common, "clip_sample": False, "set_alpha_to_one": spacing["set_alpha_to_one"]}
        return DDIMScheduler(**{**kwargs, **options})
    if sampler == "ddpm":
        options.pop("set_alpha_to_one", None)
        return DDPMScheduler(**{**common, "clip_sample": False, **options})
    if sampler == "dpmpp":
        options.pop("set_alpha_to_one", None)
        kwargs = {**common, "algorithm_type": "dpmsolver++", "solver_order": 2}
        return DPMSolverMultistepScheduler(**{**kwargs, **options})
    if sampler == "euler_a":
        if prior.prediction_type == "sample":
            raise ValidationError(
                "sampler",
                "ddim, ddpm or dpmpp for a prior predicting x0 (diffusers' Euler ancestral "
                "takes epsilon or v)",
                repr(sampler),
            )
        options.pop("set_alpha_to_one", None)
        return EulerAncestralDiscreteScheduler(**{**common, **options})
    raise ValidationError("sampler", f"one of {SAMPLERS}", repr(sampler))


class GuidedDenoiser:
    """``(x_t [B, C, h, w], t) -> `` the classifier-free-guided raw output (float32) for one
    condition, with the ``[uncond; cond]`` pair batched into one forward.

    ``guidance_scale`` 1 runs the conditional branch alone. ``guidance_rescale`` (phi in [0, 1],
    default 0: off) pulls the guided output's spread back towards the conditional output's, per
    sample: ``phi * guided * std(cond) / std(guided) + (1 - phi) * guided`` (Lin et al. 2024,
    "Common Diffusion Noise Schedules and Sample Steps are Flawed", Sec. 3.4; diffusers'
    ``guidance_rescale``), against the over-saturated colours that large scales give.
    ``graphed`` records the call as a CUDA graph on first use (inputs: ``x_t``, the timestep and
    the condition's tensors) and replays it afterwards, also for other conditions of the same
    shapes (:meth:`load`): pass one denoiser to many :func:`sample` calls to record once.
    """

    def __init__(
        self,
        prior: DiffusionPrior,
        condition: Condition,
        guidance_scale: float,
        batch_size: int,
        graphed: bool = False,
        guidance_rescale: float = 0.0,
    ):
        self.prior = check_prior(prior)
        self.scale = float(guidance_scale)
        self.rescale = float(guidance_rescale)
        if not 0.0 <= self.rescale <= 1.0:
            raise ValidationError("guidance_rescale", "a float in [0, 1]", repr(guidance_rescale))
        self.batch_size = int(batch_size)
        self.branches = 1 if self.scale == 1.0 else 2
        self.device = prior.alphas_cumprod.device
        self._static: tuple | None = None
        self._call = self._guided
        if graphed:
            from gs_core.cuda_graphs import GraphedCallable

            if self.device.type != "cuda":
                raise ValidationError("graphed", "a prior on a CUDA device", str(self.device))
            module = prior if isinstance(prior, torch.nn.Module) else None
            self._call = GraphedCallable(self._guided, module)
        self.load(condition)

    def load(self, condition: Condition) -> GuidedDenoiser:
        """Denoise under ``condition`` (batch 1 or ``batch_size``) from now on."""
        if not isinstance(condition, Condition):
            raise ValidationError("condition", "a gs_priors Condition", type(condition).__name__)
        cond = condition.expand_batch(self.batch_size)
        branches = [cond] if self.branches == 1 else [self.prior.null_condition(cond), cond]
        # One batched condition; its tensors are the graph's inputs.
        self.condition = type(cond).cat(branches).to(self.device)
        fields = dataclasses.fields(self.condition)
        values = [(f.name, getattr(self.condition, f.name)) for f in fields]
        self._fields = [n for n, v in values if isinstance(v, torch.Tensor)]
        self._tensors = [getattr(self.condition, n).contiguous() for n in self._fields]
        # A graph replays the non-tensor fields it was recorded with: a change re-records.
        static = (type(self.condition), tuple((n, v) for n, v in values if n not in self._fields))
        if static != self._static and hasattr(self._call, "clear"):
            self._call.clear()
        self._static = static
        return self

    def _guided(self, x: torch.Tensor, t: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        cond = dataclasses.replace(self.condition, **dict(zip(self._fields, tensors, strict=True)))
        n = self.branches
        out = self.prior.model_output(torch.cat([x] * n), torch.cat([t] * n), cond).float()
        if n == 1:
            return out
        uncond, conditional = out.chunk(2)
        guided = uncond + self.scale * (conditional - uncond)
        if self.rescale == 0.0:
            return guided
        dims = tuple(range(1, guided.ndim))
        ratio = conditional.std(dim=dims, keepdim=True) / guided.std(
            dim=dims, keepdim=True
        ).clamp_min(torch.finfo(guided.dtype).tiny)
        return self.rescale * guided * ratio + (1.0 - self.rescale) * guided

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        if x.shape[0] != self.batch_size:
            raise ValidationError("latents", f"batch {self.batch_size}", f"batch {x.shape[0]}")
        if isinstance(t, torch.Tensor) and t.device == x.device:
            tt = (t.round() if t.is_floating_point() else t).long().reshape(1).expand(x.shape[0])
        else:  # a host timestep is filled in on the device: no copy to wait for
            # Euler's linspace timesteps fall between integers: the nearest one.
            tt = torch.full((x.shape[0],), round(float(t)), dtype=torch.long, device=x.device)
        return self._call(x.float().contiguous(), tt.contiguous(), *self._tensors)


def _denoiser(
    prior, condition, guidance_scale, batch_size, graphed, denoiser, guidance_rescale=None
) -> GuidedDenoiser:
    if denoiser is None:
        scale = 1.0 if guidance_scale is None else guidance_scale
        rescale = 0.0 if guidance_rescale is None else guidance_rescale
        return GuidedDenoiser(prior, condition, scale, batch_size, graphed, rescale)
    if denoiser.prior is not prior or denoiser.batch_size != batch_size:
        raise ValidationError(
            "denoiser",
            f"a GuidedDenoiser of this prior at batch {batch_size}",
            f"one of {type(denoiser.prior).__name__} at batch {denoiser.batch_size}",
        )
    # A reused denoiser's guidance is fixed (and recorded, when graphed): None takes it.
    for field, asked, own in (
        ("guidance_scale", guidance_scale, denoiser.scale),
        ("guidance_rescale", guidance_rescale, denoiser.rescale),
    ):
        if asked is not None and float(asked) != own:
            raise ValidationError(field, f"the denoiser's {own} (or None)", str(asked))
    return denoiser.load(condition)


def _noise(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    src = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=src).to(device)


def _denoise(scheduler, denoiser: GuidedDenoiser, x: torch.Tensor, timesteps, generator):
    for t in timesteps:
        out = denoiser(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(out, t, x, generator=generator).prev_sample
    return x


@torch.no_grad()
def sample(
    prior: DiffusionPrior,
    condition: Condition,
    shape: tuple[int, ...],
    *,
    sampler: Sampler = "ddim",
    steps: int = 50,
    guidance_scale: float | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    graphed: bool = False,
    denoiser: GuidedDenoiser | None = None,
    guidance_rescale: float | None = None,
    **scheduler_options: Any,
) -> SampleResult:
    """Sample latents ``shape = [B, C, h, w]`` from ``prior`` under ``condition`` (batch 1 or B).

    Args:
        sampler: ``"ddim"`` (deterministic), ``"ddpm"``, ``"dpmpp"`` or ``"euler_a"``.
        steps: denoising steps.
        guidance_scale: classifier-free guidance (default 1: conditional only).
        generator: seeds the start noise (and DDPM's and Euler ancestral's per-step noise).
        noise: the start ``x_T`` ``[B, C, h, w]`` instead of drawing it.
        graphed: replay the guided denoiser as a CUDA graph (CUDA priors only).
        denoiser: a :class:`GuidedDenoiser` of ``prior`` to reuse (and its recorded graph);
            ``condition`` is loaded into it, its scale and rescale apply.
        guidance_rescale: :class:`GuidedDenoiser`'s phi (default 0: off).
        scheduler_options: passed to :func:`make_scheduler` (e.g. ``timestep_spacing="trailing"``).
    """
    if steps < 1:
        raise ValidationError("steps", "a positive int", repr(steps))
    device = prior.alphas_cumprod.device
    if noise is None:
        noise = _noise(tuple(shape), generator, device)
    elif tuple(noise.shape) != tuple(shape):
        raise ValidationError("noise", f"shape {tuple(shape)}", str(tuple(noise.shape)))
    noise = noise.to(device=device, dtype=torch.float32)
    scheduler = make_scheduler(prior, sampler, **scheduler_options)
    # Timesteps stay on the host: the scheduler's step indexes its schedule with them and
    # branches on them, which with device timesteps waits for the GPU at every step.
    scheduler.set_timesteps(steps)
    denoiser = _denoiser(
        prior, condition, guidance_scale, shape[0], graphed, denoiser, guidance_rescale
    )
    x = _denoise(
        scheduler, denoiser, noise * scheduler.init_noise_sigma, scheduler.timesteps, generator
    )
    return SampleResult(latents=x, noise=noise, timesteps=scheduler.timesteps)


@torch.no_grad()
def refine(
    prior: DiffusionPrior,
    latents: torch.Tensor,
    condition: Condition,
    *,
    strength: float,
    steps: int = 50,
    guidance_scale: float | None = None,
    generator: torch.Generator | None = None,
    graphed: bool = False,
    denoiser: GuidedDenoiser | None = None,
    guidance_rescale: float | None = None,
    **scheduler_options: Any,
) -> SampleResult:
    """DreamGaussian's image-to-image: skip the first ``int(steps * strength)`` of ``steps``
    DDIM steps (see the module docstring). ``latents`` ``[B, C, h, w]`` from
    ``prior.encode_images``; the other arguments as in :func:`sample`."""
    if not 0.0 <= strength <= 1.0:
        raise ValidationError("strength", "a float in [0, 1]", repr(strength))
    if steps < 1:
        raise ValidationError("steps", "a positive int", repr(steps))
    device = prior.alphas_cumprod.device
    latents = latents.detach().to(device=device, dtype=torch.float32)
    scheduler = make_scheduler(prior, "ddim", **scheduler_options)
    scheduler.set_timesteps(steps)  # on the host, as in sample()
    start = int(steps * strength)
    timesteps = scheduler.timesteps[start:]
    if len(timesteps) == 0:
        return SampleResult(latents=latents.clone(), noise=latents.clone(), timesteps=timesteps)
    noise = _noise(tuple(latents.shape), generator, device)
    # DreamGaussian starts strength 0 from pure noise rather than from the barely noised input.
    x = noise if start == 0 else scheduler.add_noise(latents, noise, timesteps[:1])
    denoiser = _denoiser(
        prior, condition, guidance_scale, latents.shape[0], graphed, denoiser, guidance_rescale
    )
    out = _denoise(scheduler, denoiser, x, timesteps, generator)
    return SampleResult(latents=out, noise=x, timesteps=timesteps)


__all__ = [
    "SAMPLERS",
    "GuidedDenoiser",
    "SampleResult",
    "make_scheduler",
    "refine",
    "sample",
]
