"""CLIP text states: what the Stable Diffusion family's U-Nets cross-attend to.

``clip_text_states(tokenizer, text_encoder, prompts, device)`` -> ``[B, L, D]`` float32: each
prompt tokenised and padded to the tokenizer's ``model_max_length`` (77 for CLIP), truncated
beyond it, and the text encoder's last hidden states, as the official pipelines of Stable
Diffusion, ImageDream and Zero123++ compute their prompt embeddings.
"""

from __future__ import annotations

import torch


def clip_text_states(tokenizer, text_encoder, prompts: list[str], device) -> torch.Tensor:
    tokens = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    return text_encoder(tokens.input_ids.to(device))[0].float()


__all__ = ["clip_text_states"]
