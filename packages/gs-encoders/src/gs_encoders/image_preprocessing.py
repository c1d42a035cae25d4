"""Differentiable image preprocessing shared by the image encoders.

Encoders take ``images [B, 3, H, W]`` float in ``[0, 1]`` (channels first, like timm and
open_clip); everything here stays on the images' device and keeps gradients, so an encoder can
sit inside a loss.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gs_core.errors import ValidationError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_images(images: torch.Tensor, field: str = "images") -> torch.Tensor:
    """Validate ``images [B, 3, H, W]`` floating point; returns it unchanged."""
    if not isinstance(images, torch.Tensor):
        raise ValidationError(field, "a torch.Tensor [B, 3, H, W]", type(images).__name__)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValidationError(
            field, "shape [B, 3, H, W] (RGB, channels first)", str(tuple(images.shape))
        )
    if not images.is_floating_point():
        raise ValidationError(field, "a floating point tensor in [0, 1]", str(images.dtype))
    if images.shape[0] == 0 or images.shape[2] < 2 or images.shape[3] < 2:
        raise ValidationError(
            field, "a non-empty batch of images at least 2x2", str(tuple(images.shape))
        )
    return images


def channels_first(images: torch.Tensor, field: str = "images") -> torch.Tensor:
    """``[B, H, W, 3]`` (renderer / metric layout) -> ``[B, 3, H, W]``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] != 3:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValidationError(field, "images [B, H, W, 3]", str(got))
    return images.permute(0, 3, 1, 2)


def as_hw(size: int | Sequence[int], field: str = "image_size") -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValidationError(field, "a positive int or (height, width)", str(size))
    return size  # type: ignore[return-value]


def snap_to_multiple(size: int | Sequence[int], multiple: int) -> tuple[int, int]:
    """Each side rounded to the nearest multiple of ``multiple`` (at least one multiple).

    Halves round up (``7 -> 14`` for 14): the pixel grid never shrinks below half a patch.
    """
    h, w = as_hw(size)
    return tuple(max(multiple, multiple * int((s / multiple) + 0.5)) for s in (h, w))  # type: ignore[return-value]


def resize(images: torch.Tensor, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize ``[B, C, H, W]`` to ``size`` with antialiasing when shrinking; no-op if equal."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    out = F.interpolate(images, size=size, mode=mode, antialias=True, align_corners=False)
    # bicubic overshoots; keep colours in range so normalisation sees what a PIL resize would.
    return out.clamp(0.0, 1.0) if mode == "bicubic" else out


def resize_shortest_center_crop(
    images: torch.Tensor, size: tuple[int, int], mode: str = "bicubic"
) -> torch.Tensor:
    """CLIP's default transform: scale so the image covers ``size``, then centre-crop it."""
    h, w = images.shape[-2:]
    th, tw = size
    scale = max(th / h, tw / w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    images = resize(images, (nh, nw), mode)
    top, left = (nh - th) // 2, (nw - tw) // 2
    return images[..., top : top + th, left : left + tw]


def resize_longest_pad(
    images: torch.Tensor, size: tuple[int, int], fill: float = 0.0, mode: str = "bicubic"
) -> torch.Tensor:
    """Scale so the image fits inside ``size``, then pad it (centred) with ``fill``."""
    h, w = images.shape[-2:]
    th, tw = size
    scale = min(th / h, tw / w)
    nh, nw = min(th, max(1, round(h * scale))), min(tw, max(1, round(w * scale)))
    images = resize(images, (nh, nw), mode)
    top, left = (th - nh) // 2, (tw - nw) // 2
    return F.pad(images, (left, tw - nw - left, top, th - nh - top), value=fill)


@functools.lru_cache(maxsize=64)
def _channel_constant(
    values: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    # Cached so that repeated calls copy nothing from the host: a host-to-device copy inside a
    # CUDA graph capture is an error.
    return torch.tensor(values, dtype=dtype, device=device).view(1, -1, 1, 1)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(images - mean) / std`` per channel of ``images [B, C, H, W]``."""
    m = _channel_constant(tuple(float(v) for v in mean), images.dtype, images.device)
    s = _channel_constant(tuple(float(v) for v in std), images.dtype, images.device)
    return (images - m) / s


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "as_hw",
    "channels_first",
    "check_images",
    "normalize",
    "resize",
    "resize_longest_pad",
    "resize_shortest_center_crop",
    "snap_to_multiple",
]
