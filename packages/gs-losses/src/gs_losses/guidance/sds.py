"""Score Distillation Sampling (DreamFusion, Poole et al. 2023, eq. 3), single- and multi-view.

``grad_theta L_SDS = E_{t, eps}[ w(t) (eps_hat(z_t; y, t) - eps) dz/dtheta ]``

with ``z = E(g(theta))`` the latents of the rendered image, ``z_t = sqrt(alpha_bar_t) z +
sqrt(1 - alpha_bar_t) eps`` and ``eps_hat`` the prior's classifier-free-guided noise prediction.
The U-Net Jacobian is skipped, so the gradient is injected through the surrogate

``L = sum( sg[grad] * z )`` whose gradient w.r.t. ``z`` is exactly ``grad = w(t) (eps_hat - eps)``.

The reported value is ``0.5 ||grad||^2`` (what DreamGaussian's ``0.5 * mse(z, z - grad, sum)``
evaluates to), for logging only. ``w(t) = 1 - alpha_bar_t`` (``weighting="sds"``, DreamFusion
and DreamGaussian) or ``1`` (``"uniform"``).

Multi-view SDS takes rendered views ``[B, V, 3, H, W]``: one ``t`` per object shared by its
``V`` views (a multi-view prior such as ImageDream denoises them jointly), independent noise per
view. DD3G's implicit verification (DD3G eq. 5) is multi-view SDS with ``t`` in ``[20, 300]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_losses.guidance.noise import add_noise, guided_noise
from gs_losses.guidance.timesteps import TimestepSchedule
from gs_losses.terms import LossTerms
from gs_priors.prior import Condition, DiffusionPrior, check_prior

Conditions = Condition | Sequence[Condition]


@dataclass
class ScoreDistillationOutput:
    """One score-distillation step, for logging and tests.

    ``loss`` is the surrogate (its gradient w.r.t. ``latents`` is ``grad``, divided by the
    number of images when ``reduction="batch_mean"``); ``latents``, ``noise``, ``grad`` are
    ``[N, C, h, w]`` with ``N = B * V``; ``t`` and ``w`` are ``[N]``.
    """

    loss: torch.Tensor
    grad: torch.Tensor
    latents: torch.Tensor
    noise: torch.Tensor
    t: torch.Tensor
    w: torch.Tensor


def sds_weight(t: torch.Tensor, alphas_cumprod: torch.Tensor, weighting: str) -> torch.Tensor:
    """``w(t)`` ``[N]``: ``1 - alpha_bar_t`` (``"sds"``) or ``1`` (``"uniform"``)."""
    if weighting == "sds":
        return 1.0 - alphas_cumprod.to(t.device)[t].float()
    if weighting == "uniform":
        return torch.ones(t.shape, dtype=torch.float32, device=t.device)
    raise ValidationError("weighting", "'sds' or 'uniform'", repr(weighting))


def surrogate_loss(latents: torch.Tensor, grad: torch.Tensor, reduction: str) -> torch.Tensor:
    """A scalar whose gradient w.r.t. ``latents`` is exactly ``grad`` (``"sum"``), ``grad / N``
    (``"batch_mean"``, ``N`` images) or ``grad / latents.numel()`` (``"mean"``).

    Its value is ``0.5 ||grad||^2`` divided likewise: ``sum(g z) - sg[sum(g z)]`` contributes
    the gradient and evaluates to exactly zero.
    """
    grad = grad.detach()
    z = latents.float()
    linear = (grad * z).sum()
    loss = linear - linear.detach() + 0.5 * grad.square().sum()
    if reduction == "sum":
        return loss
    if reduction == "batch_mean":
        return loss / latents.shape[0]
    if reduction == "mean":
        return loss / latents.numel()
    raise ValidationError("reduction", "'sum', 'batch_mean' or 'mean'", repr(reduction))


class SDSConfig(Config):
    """Score distillation settings.

    ``guidance_scale``: classifier-free guidance, one value or one per condition.
    ``reduction``: ``"sum"`` over the batch (DreamGaussian's Zero123 guidance) or
    ``"batch_mean"`` (divide by the number of images; DreamGaussian's SD guidance, threestudio)
    or ``"mean"`` (divide by the number of latent entries, the scale of a mean-reduced image
    loss beside it; DD3G's implicit verification).
    ``grad_clip``: clamp each gradient entry to ``[-c, c]`` (off by default, as DreamGaussian).
    """

    guidance_scale: float | list[float] = 7.5
    timesteps: TimestepSchedule = TimestepSchedule()
    weighting: Literal["sds", "uniform"] = "sds"
    reduction: Literal["sum", "batch_mean", "mean"] = "sum"
    grad_clip: float | None = None

    # Generic settings only: a method's own preset (DreamGaussian's, DD3G's) lives in its plugin.
    presets = {
        "tiny": {"guidance_scale": 3.0},
    }


def _flatten_views(x: torch.Tensor, field: str) -> tuple[torch.Tensor, int]:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim not in (4, 5):
        got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValidationError(
            field, "a float tensor [B, C, H, W] or multi-view [B, V, C, H, W]", got
        )
    if x.ndim == 5:
        return x.flatten(0, 1), x.shape[1]
    return x, 1


class SDS:
    """Score Distillation Sampling against a :class:`DiffusionPrior`.

    ``sds(images, condition)`` returns ``{"sds": loss}``; backpropagating it puts
    ``w(t) (eps_hat - eps)`` on the latents of ``images`` (and through the prior's encoder on
    the images). ``compute`` returns the full :class:`ScoreDistillationOutput`.

    Args:
        prior: the teacher; its weights are frozen and run without autograd.
        config: :class:`SDSConfig` (or a preset, ``SDSConfig.preset("tiny")``).
    """

    def __init__(self, prior: DiffusionPrior, config: SDSConfig | None = None):
        self.prior = check_prior(prior)
        self.config = config if config is not None else SDSConfig()

    def _prepare(
        self,
        images: torch.Tensor | None,
        latents: torch.Tensor | None,
        step_ratio: float | None,
        t: torch.Tensor | None,
        noise: torch.Tensor | None,
        generator: torch.Generator | None,
        schedule: TimestepSchedule,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        if (images is None) == (latents is None):
            raise ValidationError(
                "SDS",
                "exactly one of images or latents",
                "both" if images is not None else "neither",
            )
        if images is not None:
            flat, views = _flatten_views(images, "images")
            # The renders' latent is a posterior sample: drawn from the caller's generator too
            # (left out when there is none, for priors written before the protocol took one).
            z = (
                self.prior.encode_images(flat)
                if generator is None
                else self.prior.encode_images(flat, generator=generator)
            )
        else:
            z, views = _flatten_views(latents, "latents")
        n = z.shape[0]
        if t is None:
            t = schedule.sample(
                n // views, self.prior.num_train_timesteps, step_ratio, generator, z.device
            )
            t = t.repeat_interleave(views)
        else:
            t = torch.as_tensor(t, device=z.device).long().flatten()
            if t.numel() == n // views and views > 1:
                t = t.repeat_interleave(views)
            if t.numel() != n:
                raise ValidationError("t", f"{n // views} or {n} timesteps", f"{t.numel()}")
        if noise is None:
            noise = torch.randn(
                z.shape,
                generator=generator,
                device=generator.device if generator is not None else z.device,
            )
            noise = noise.to(device=z.device, dtype=torch.float32)
        else:
            noise = noise.flatten(0, 1) if noise.ndim == 5 else noise
            if noise.shape != z.shape:
                raise ValidationError(
                    "noise", f"shape {tuple(z.shape)} like the latents", f"{tuple(noise.shape)}"
                )
            noise = noise.float()
        return z, t, noise, views

    def _expand_conditions(self, conditions: Conditions, n: int, views: int) -> list[Condition]:
        conds = [conditions] if isinstance(conditions, Condition) else list(conditions)
        out = []
        for c in conds:
            b = c.batch_size
            out.append(
                c.repeat_interleave(views) if views > 1 and b * views == n else c.expand_batch(n)
            )
        return out

    def _grad(self, z, t, noise, eps_hat) -> tuple[torch.Tensor, torch.Tensor]:
        w = sds_weight(t, self.prior.alphas_cumprod, self.config.weighting)
        grad = w.view(-1, *([1] * (z.ndim - 1))) * (eps_hat - noise)
        grad = torch.nan_to_num(grad)
        if self.config.grad_clip is not None:
            grad = grad.clamp(-self.config.grad_clip, self.config.grad_clip)
        return grad, w

    def compute(
        self,
        images: torch.Tensor | None = None,
        condition: Conditions | None = None,
        *,
        latents: torch.Tensor | None = None,
        step_ratio: float | None = None,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ScoreDistillationOutput:
        """One SDS step.

        Args:
            images: renders ``[B, 3, H, W]`` or ``[B, V, 3, H, W]`` in ``[0, 1]``; or
            latents: latents ``[B, C, h, w]`` / ``[B, V, C, h, w]`` directly (no encoder).
            condition: a condition (batch 1, ``B`` or ``B * V``) or several for compositional
                guidance (one ``guidance_scale`` each).
            step_ratio: training progress in ``[0, 1]``, needed when the schedule anneals.
            t, noise: fix the timestep (``[B]`` or ``[B * V]``) and noise (tests, variance
                reduction); sampled otherwise.
        """
        if condition is None:
            raise ValidationError("condition", "a Condition (or a sequence of them)", "None")
        z, t, noise, views = self._prepare(
            images, latents, step_ratio, t, noise, generator, self.config.timesteps
        )
        conds = self._expand_conditions(condition, z.shape[0], views)
        with torch.no_grad():
            z_t = add_noise(z.detach().float(), noise, t, self.prior.alphas_cumprod)
            eps_hat = guided_noise(self.prior, z_t, t, conds, self.config.guidance_scale)
        grad, w = self._grad(z, t, noise, eps_hat)
        loss = surrogate_loss(z, grad, self.config.reduction)
        return ScoreDistillationOutput(loss=loss, grad=grad, latents=z, noise=noise, t=t, w=w)

    def __call__(
        self, images: torch.Tensor | None = None, condition: Conditions | None = None, **kwargs
    ) -> LossTerms:
        return {"sds": self.compute(images, condition, **kwargs).loss}
