"""VSD student priors: a LoRA on the teacher's U-Net (ProlificDreamer) or a full copy (GECO).

Both are :class:`~gs_priors.prior.DiffusionPrior` s sharing the teacher's VAE,
encoders and conditions; only the denoiser differs and is trainable.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from gs_core.errors import ValidationError
from gs_priors.diffusers_prior import DiffusersPrior
from gs_priors.prior import Condition, DelegatingPrior

DEFAULT_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


class LoRAStudent(DelegatingPrior):
    """The teacher's U-Net seen through a LoRA adapter (peft), trained as the VSD student.

    The teacher keeps predicting with the adapter disabled, so one U-Net in memory serves both.
    LoRA's up-projections start at zero: the student initially equals the teacher.
    """

    def __init__(self, prior: DiffusersPrior, adapter_name: str):
        super().__init__(prior)
        self.prior = prior
        self.adapter_name = adapter_name

    def model_output(
        self, latents_t: torch.Tensor, t: torch.Tensor, condition: Condition
    ) -> torch.Tensor:
        with self.prior.adapter(self.adapter_name):
            return self.prior.model_output(latents_t, t, condition)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The LoRA weights (float32 even when the U-Net is half precision)."""
        return [
            p
            for n, p in self.prior.unet.named_parameters()
            if self.adapter_name in n and "lora_" in n
        ]


def lora_student(
    prior: DiffusersPrior,
    rank: int = 4,
    alpha: float | None = None,
    target_modules: Sequence[str] = DEFAULT_LORA_TARGETS,
    adapter_name: str = "vsd_student",
) -> LoRAStudent:
    """Add a LoRA adapter (rank ``rank``, scale ``alpha / rank``; ``alpha`` defaults to ``rank``)
    to ``prior``'s U-Net attention projections and return the student that uses it."""
    from peft import LoraConfig

    if not isinstance(prior, DiffusersPrior):
        raise ValidationError("prior", "a DiffusersPrior (a U-Net to adapt)", type(prior).__name__)
    if rank < 1:
        raise ValidationError("rank", "a positive int", repr(rank))
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,
        target_modules=list(target_modules),
        init_lora_weights=True,
    )
    prior.unet.add_adapter(config, adapter_name=adapter_name)
    student = LoRAStudent(prior, adapter_name)
    for p in student.trainable_parameters():
        # Adapter weights train in float32 even on a half-precision U-Net.
        p.data = p.data.float()
        p.requires_grad_(True)
    # The pretrained weights stay frozen; peft may have toggled requires_grad.
    for n, p in prior.unet.named_parameters():
        if "lora_" not in n:
            p.requires_grad_(False)
    return student


def copy_student(prior: DiffusersPrior) -> DiffusersPrior:
    """A student with its own trainable copy of the teacher's U-Net (GECO initialises the
    student from the pretrained Zero123++); VAE and encoders stay shared and frozen."""
    if not isinstance(prior, DiffusersPrior):
        raise ValidationError("prior", "a DiffusersPrior (a U-Net to copy)", type(prior).__name__)
    student = copy.copy(prior)
    # nn.Module keeps submodules in _modules; give the copy its own dict and U-Net.
    student._modules = dict(prior._modules)
    student._parameters = dict(prior._parameters)
    student._buffers = dict(prior._buffers)
    student._alphas_cache = {}
    unet = copy.deepcopy(prior.unet)
    unet.requires_grad_(True)
    unet.train()
    student._modules["unet"] = unet
    return student
