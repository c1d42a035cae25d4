"""Stable Diffusion text guidance (``stabilityai/stable-diffusion-2-1-base``-style checkpoints).

Conditioning as DreamGaussian's ``guidance/sd_utils.py`` and threestudio: the CLIP text
encoder's last hidden states of the prompt, padded to the tokenizer's maximum length, as
cross-attention context; the unconditional branch of classifier-free guidance uses the
embeddings of the negative prompt (empty by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from gs_core.errors import ValidationError
from gs_priors.diffusers_prior import DiffusersPrior, load_component, scheduler_from_dir
from gs_priors.model_dir import resolve_model_dir
from gs_priors.prior import Condition
from gs_priors.text_states import clip_text_states

COMPONENTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
DEFAULT_MODEL_ID = "stabilityai/stable-diffusion-2-1-base"


@dataclass(frozen=True)
class TextCondition(Condition):
    """Text embeddings ``[B, L, D]`` and the negative-prompt embeddings used as unconditional."""

    embeddings: torch.Tensor
    null_embeddings: torch.Tensor


class StableDiffusionGuidance(DiffusersPrior):
    """A Stable Diffusion :class:`~gs_priors.prior.DiffusionPrior` (epsilon or v).

    Build with :meth:`from_pretrained`; condition with :meth:`encode_text`.
    """

    def __init__(self, vae, unet, text_encoder, tokenizer, scheduler, **kwargs):
        super().__init__(vae, unet, scheduler, **kwargs)
        self.text_encoder = text_encoder
        self.text_encoder.requires_grad_(False)
        self.text_encoder.eval()
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_MODEL_ID,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **kwargs,
    ) -> StableDiffusionGuidance:
        """Load from a local diffusers directory or a hub repo id (offline-safe, no random init).

        Raises :class:`~gs_core.errors.WeightsNotFoundError` naming the model when it is neither
        a directory nor fetchable/cached.
        """
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        directory = resolve_model_dir(name_or_path, COMPONENTS)
        vae = load_component(AutoencoderKL, directory, "vae", torch_dtype=dtype)
        unet = load_component(UNet2DConditionModel, directory, "unet", torch_dtype=dtype)
        text_encoder = load_component(CLIPTextModel, directory, "text_encoder", dtype=dtype)
        tokenizer = load_component(CLIPTokenizer, directory, "tokenizer")
        scheduler = scheduler_from_dir(directory)
        return cls(vae, unet, text_encoder, tokenizer, scheduler, **kwargs).to(device)

    @torch.no_grad()
    def _embed(self, prompts: list[str]) -> torch.Tensor:
        return clip_text_states(self.tokenizer, self.text_encoder, prompts, self.device)

    def encode_text(
        self, prompts: str | Sequence[str], negative_prompts: str | Sequence[str] = ""
    ) -> TextCondition:
        """Prompts (``B`` of them) -> :class:`TextCondition` with embeddings ``[B, L, D]``."""
        pos = [prompts] if isinstance(prompts, str) else list(prompts)
        neg = (
            [negative_prompts] * len(pos)
            if isinstance(negative_prompts, str)
            else list(negative_prompts)
        )
        if not pos or len(neg) != len(pos):
            raise ValidationError(
                "negative_prompts",
                f"one string or {len(pos)} strings (one per prompt)",
                str(len(neg)),
            )
        return TextCondition(embeddings=self._embed(pos), null_embeddings=self._embed(neg))

    def null_condition(self, condition: TextCondition) -> TextCondition:
        return TextCondition(
            embeddings=condition.null_embeddings, null_embeddings=condition.null_embeddings
        )

    def model_output(
        self, latents_t: torch.Tensor, t: torch.Tensor, condition: TextCondition
    ) -> torch.Tensor:
        if not isinstance(condition, TextCondition):
            raise ValidationError(
                "condition",
                "a TextCondition (StableDiffusionGuidance.encode_text)",
                type(condition).__name__,
            )
        return self.unet_forward(
            latents_t, t, encoder_hidden_states=condition.embeddings.to(latents_t.device)
        )
