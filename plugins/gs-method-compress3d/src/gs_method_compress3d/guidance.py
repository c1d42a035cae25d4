"""Condition dropout for training and the dual classifier-free guidance of Eq. 15.

Training (Sec. 3.3): with probability ``p`` each, drop only ``e_p``, only ``e_s``, or both
(5% / 5% / 5% in the paper). Inference:

``f~ = f(z, t, 0_s, 0_p) + s_p (f(z, t, 0_s, e_p) - f(z, t, 0_s, 0_p))
+ s_s (f(z, t, e_s, e_p) - f(z, t, 0_s, e_p))``.

The three branches run as one forward on a batch of ``3B`` (:func:`guidance_drop_masks` gives the
masks in the order ``[uncond, image only, both]``).
"""

from __future__ import annotations

import torch


def condition_dropout(
    batch: int,
    p_image: float,
    p_shape: float,
    p_both: float,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(drop_shape [B], drop_image [B])`` bool: one uniform draw per sample split into
    ``[0, p_image)`` image only, ``[p_image, p_image + p_shape)`` shape only, the next ``p_both``
    both, the rest neither."""
    u = torch.rand(batch, device=device, generator=generator)
    only_image = u < p_image
    only_shape = (u >= p_image) & (u < p_image + p_shape)
    both = (u >= p_image + p_shape) & (u < p_image + p_shape + p_both)
    return only_shape | both, only_image | both


def guidance_drop_masks(batch: int, device: torch.device | str = "cpu"):
    """``(drop_shape [3B], drop_image [3B])`` for the branches ``[(0_s, 0_p), (0_s, e_p),
    (e_s, e_p)]``, each repeated over the batch."""
    drop_shape = torch.tensor([True, True, False], device=device).repeat_interleave(batch)
    drop_image = torch.tensor([True, False, False], device=device).repeat_interleave(batch)
    return drop_shape, drop_image


def dual_guidance(
    uncond: torch.Tensor,
    image_only: torch.Tensor,
    full: torch.Tensor,
    scale_shape: float,
    scale_image: float,
) -> torch.Tensor:
    """Eq. 15 from the three branch predictions (each ``[B, ...]``)."""
    return uncond + scale_image * (image_only - uncond) + scale_shape * (full - image_only)


__all__ = ["condition_dropout", "dual_guidance", "guidance_drop_masks"]
