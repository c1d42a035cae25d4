"""The ``DiffusionPrior`` protocol every score-distillation teacher (and student) implements.

A prior wraps a pretrained latent (or pixel) diffusion model. Score distillation (SDS / VSD in
``gs_losses.guidance``) needs from it

* ``encode_images`` - rendered images ``[B, 3, H, W]`` in ``[0, 1]`` to the latents the model
  denoises, differentiably (the gradient flows back through the encoder);
* ``model_output`` - the raw network prediction for ``(latents_t, t, condition)``, whose meaning
  ``prediction_type`` names (``"epsilon"``, ``"v_prediction"`` or ``"sample"``, as diffusers);
* ``alphas_cumprod`` - the training schedule ``alpha_bar_t`` ``[T]``, so noising and the
  conversions between prediction types are done once, for every prior
  (:mod:`gs_priors.forward_process`);
* ``null_condition`` - the unconditional counterpart of a condition, for classifier-free
  guidance.

Conditions are :class:`Condition` dataclasses whose tensor fields are batch-first, so guidance
can stack ``[uncond, cond_1, ..., cond_k]`` into one batched forward. Stable Diffusion,
Zero123, and the Zero123++ (GECO) and ImageDream (DD3G) priors of the method plugins all fit
this shape: their conditions are text embeddings, image/camera embeddings plus an image latent,
reference-image latents, camera matrices - all batch-first tensors.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import Protocol, TypeVar, runtime_checkable

import torch

from gs_core.errors import ValidationError

C = TypeVar("C", bound="Condition")

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclasses.dataclass(frozen=True)
class Condition:
    """Base of prior conditions: a frozen dataclass whose tensor fields share a leading batch dim.

    Non-tensor fields (flags, names) are allowed and must agree when conditions are stacked.
    """

    def _tensor_fields(self) -> dict[str, torch.Tensor]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }

    @property
    def batch_size(self) -> int:
        sizes = {t.shape[0] for t in self._tensor_fields().values()}
        if len(sizes) != 1:
            raise ValidationError(
                type(self).__name__, "tensor fields with one batch size", str(sorted(sizes))
            )
        return sizes.pop()

    def expand_batch(self: C, n: int) -> C:
        """Broadcast a batch-1 condition to ``n`` (a batch-``n`` one is returned as is)."""
        b = self.batch_size
        if b == n:
            return self
        if b != 1:
            raise ValidationError(
                type(self).__name__, f"batch 1 or {n} to match the latents", f"batch {b}"
            )
        return dataclasses.replace(
            self, **{k: v.expand(n, *v.shape[1:]) for k, v in self._tensor_fields().items()}
        )

    def repeat_interleave(self: C, n: int) -> C:
        """Repeat each item ``n`` times (one condition per object -> one per rendered view)."""
        return dataclasses.replace(
            self, **{k: v.repeat_interleave(n, dim=0) for k, v in self._tensor_fields().items()}
        )

    def to(self: C, device=None, dtype: torch.dtype | None = None) -> C:
        out = {}
        for k, v in self._tensor_fields().items():
            out[k] = (
                v.to(device=device, dtype=dtype)
                if dtype is not None and v.is_floating_point()
                else v.to(device)
            )
        return dataclasses.replace(self, **out)

    @classmethod
    def cat(cls: type[C], conditions: Sequence[C]) -> C:
        """Stack conditions of one type along the batch dim."""
        if not conditions:
            raise ValidationError("Condition.cat", "at least one condition", "none")
        first = conditions[0]
        for c in conditions[1:]:
            if type(c) is not type(first):
                raise ValidationError(
                    "Condition.cat",
                    f"conditions of one type ({type(first).__name__})",
                    type(c).__name__,
                )
        values = {}
        for f in dataclasses.fields(first):
            vals = [getattr(c, f.name) for c in conditions]
            if isinstance(vals[0], torch.Tensor):
                values[f.name] = torch.cat(vals, dim=0)
            else:
                if any(v != vals[0] for v in vals[1:]):
                    raise ValidationError(
                        f"Condition.cat({f.name})", "equal non-tensor fields", repr(vals)
                    )
                values[f.name] = vals[0]
        return type(first)(**values)


@runtime_checkable
class DiffusionPrior(Protocol):
    """What SDS / VSD need from a diffusion model (see the module docstring)."""

    @property
    def num_train_timesteps(self) -> int:
        """``T``: timesteps are integers in ``[0, T)``."""
        ...

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """``alpha_bar_t`` ``[T]`` float32 on the prior's device."""
        ...

    @property
    def prediction_type(self) -> str:
        """``"epsilon"``, ``"v_prediction"`` or ``"sample"``."""
        ...

    def encode_images(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``[B, 3, H, W]`` in ``[0, 1]`` -> latents ``[B, C, h, w]`` (float32, differentiable).
        A prior whose latent is random (a VAE posterior sample) draws it from ``generator``
        (the global generator when ``None``); callers pass one only when they were given one."""
        ...

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images ``[B, 3, H, W]`` in ``[0, 1]``."""
        ...

    def model_output(
        self, latents_t: torch.Tensor, t: torch.Tensor, condition: Condition
    ) -> torch.Tensor:
        """Raw prediction (float32, shaped like ``latents_t``) for noisy latents at integer ``t [B]``."""
        ...

    def null_condition(self, condition: Condition) -> Condition:
        """The unconditional input paired with ``condition`` in classifier-free guidance."""
        ...


class DelegatingPrior:
    """A :class:`DiffusionPrior` that forwards every protocol member to ``inner``; a wrapper
    (a LoRA student, a CUDA-graphed denoiser) overrides only what it changes. The members are
    defined here rather than forwarded by ``__getattr__``: ``isinstance`` on a runtime protocol
    looks them up statically from Python 3.12."""

    def __init__(self, inner: DiffusionPrior):
        self.inner = inner

    @property
    def num_train_timesteps(self) -> int:
        return self.inner.num_train_timesteps

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.inner.alphas_cumprod

    @property
    def prediction_type(self) -> str:
        return self.inner.prediction_type

    def encode_images(self, images: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.inner.encode_images(images, *args, **kwargs)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self.inner.decode_latents(latents)

    def model_output(
        self, latents_t: torch.Tensor, t: torch.Tensor, condition: Condition
    ) -> torch.Tensor:
        return self.inner.model_output(latents_t, t, condition)

    def null_condition(self, condition: Condition) -> Condition:
        return self.inner.null_condition(condition)


def _has_static(obj: object, name: str) -> bool:
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


_MEMBERS = (
    "num_train_timesteps",
    "alphas_cumprod",
    "prediction_type",
    "encode_images",
    "decode_latents",
    "model_output",
    "null_condition",
)


def check_prior(prior: object, field: str = "prior") -> DiffusionPrior:
    # Members are looked up statically, as isinstance() on a runtime protocol does from Python
    # 3.12: a wrapper that only delegates through __getattr__ passes hasattr() on 3.11 and
    # fails on 3.12, so the check is the 3.12 one everywhere.
    missing = [n for n in _MEMBERS if not _has_static(prior, n)]
    if missing or not isinstance(prior, DiffusionPrior):
        raise ValidationError(
            field, "a DiffusionPrior", f"{type(prior).__name__} lacking {missing}"
        )
    if prior.prediction_type not in PREDICTION_TYPES:
        raise ValidationError(
            f"{field}.prediction_type", f"one of {PREDICTION_TYPES}", repr(prior.prediction_type)
        )
    return prior
