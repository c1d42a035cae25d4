"""Structural similarity (Wang, Bovik, Sheikh and Simoncelli, IEEE TIP 2004), differentiable.

Eq. (13) of the paper with the Gaussian weighting of its section III-B: an 11x11 circular-
symmetric Gaussian window with sigma 1.5, normalised to sum 1, ``C1 = (K1 R)^2``,
``C2 = (K2 R)^2`` with ``K1 = 0.01, K2 = 0.03``, statistics as weighted population moments
(no ``N / (N - 1)`` correction) and the mean of the SSIM map over every window that fits
inside the image (``padding="valid"``, as the authors' reference MATLAB code). Colour images
are scored channel by channel and averaged.

``padding="same"`` zero-pads by half a window instead, keeping the map at full resolution; it
is the variant 3DGS-style training losses use, not the one to report.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from gs_core.errors import ValidationError


def gaussian_window(
    size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """1D Gaussian ``[size]`` centred on the middle tap and normalised to sum 1.

    The 2D window of the paper is its outer product with itself (it is separable).
    """
    if size < 1 or size % 2 == 0:
        raise ValidationError("window_size", "a positive odd int", repr(size))
    if sigma <= 0:
        raise ValidationError("sigma", "a positive float", repr(sigma))
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def ssim_map(
    pred: torch.Tensor,
    target: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    padding: Literal["valid", "same"] = "valid",
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Per-pixel SSIM of channels-first images.

    Args:
        pred, target: ``[B, C, H, W]`` in ``[0, data_range]``.
        padding: ``"valid"`` -> ``[B, C, H - window_size + 1, W - window_size + 1]``;
            ``"same"`` (zero padding) -> ``[B, C, H, W]``.

    Returns:
        The SSIM map, float32 (or float64 for float64 inputs), differentiable in both inputs.
    """
    for field, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim != 4:
            got = (
                f"shape {tuple(t.shape)}, {t.dtype}"
                if isinstance(t, torch.Tensor)
                else type(t).__name__
            )
            raise ValidationError(f"ssim({field})", "a float tensor [B, C, H, W]", got)
    if pred.shape != target.shape:
        raise ValidationError(
            "ssim(target)", f"shape {tuple(pred.shape)} like pred", f"{tuple(target.shape)}"
        )
    if padding not in ("valid", "same"):
        raise ValidationError("ssim(padding)", "'valid' or 'same'", repr(padding))
    b, c, h, w = pred.shape
    if padding == "valid" and (h < window_size or w < window_size):
        raise ValidationError(
            "ssim(pred)",
            f"images of at least {window_size}x{window_size} pixels for padding='valid'",
            f"{h}x{w}",
        )
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    x, y = pred.to(dtype), target.to(dtype)
    g = gaussian_window(window_size, sigma, dtype=dtype, device=x.device)
    # The five local moments in one depthwise, separable convolution.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    n = stack.shape[1]
    pad = window_size // 2 if padding == "same" else 0
    out = F.conv2d(stack, g.view(1, 1, -1, 1).expand(n, 1, -1, 1), padding=(pad, 0), groups=n)
    out = F.conv2d(out, g.view(1, 1, 1, -1).expand(n, 1, 1, -1), padding=(0, pad), groups=n)
    mu_x, mu_y, e_xx, e_yy, e_xy = out.split(c, dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    padding: Literal["valid", "same"] = "valid",
) -> torch.Tensor:
    """Mean SSIM of each image of a channels-last batch.

    Args:
        pred, target: ``[B, H, W, C]`` in ``[0, data_range]``.

    Returns:
        ``[B]`` mean SSIM (Wang et al. 2004, eq. 13 averaged over windows and channels).
    """
    for field, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            got = f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValidationError(f"ssim({field})", "a tensor [B, H, W, C]", got)
    m = ssim_map(
        pred.permute(0, 3, 1, 2),
        target.permute(0, 3, 1, 2),
        window_size=window_size,
        sigma=sigma,
        data_range=data_range,
        padding=padding,
    )
    return m.flatten(1).mean(dim=1)
