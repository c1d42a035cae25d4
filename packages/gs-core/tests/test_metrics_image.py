"""PSNR and SSIM against independent numpy references (Wang et al. 2004, direct 2D windows)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gs_core.errors import ValidationError
from gs_core.metrics import gaussian_window, psnr, ssim, ssim_map


def _ssim_reference(x: np.ndarray, y: np.ndarray, size=11, sigma=1.5, pad=0) -> float:
    """Mean SSIM of one [H, W] channel pair, with the 2D window built directly (not separably)."""
    if pad:
        x = np.pad(x, pad)
        y = np.pad(y, pad)
    r = np.arange(size) - size // 2
    dy, dx = np.meshgrid(r, r, indexing="ij")
    w = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    w /= w.sum()
    xw = np.lib.stride_tricks.sliding_window_view(x, (size, size))
    yw = np.lib.stride_tricks.sliding_window_view(y, (size, size))
    mx = np.einsum("ijkl,kl->ij", xw, w)
    my = np.einsum("ijkl,kl->ij", yw, w)
    vx = np.einsum("ijkl,kl->ij", (xw - mx[..., None, None]) ** 2, w)
    vy = np.einsum("ijkl,kl->ij", (yw - my[..., None, None]) ** 2, w)
    cxy = np.einsum("ijkl,kl->ij", (xw - mx[..., None, None]) * (yw - my[..., None, None]), w)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def _pair(b=2, h=24, w=20, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, h, w, c, generator=g, dtype=torch.float64)
    y = (x + 0.15 * torch.randn(b, h, w, c, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def test_ssim_matches_direct_reference_valid():
    x, y = _pair()
    got = ssim(x, y)
    assert got.shape == (2,)
    for i in range(2):
        ref = np.mean(
            [_ssim_reference(x[i, ..., ch].numpy(), y[i, ..., ch].numpy()) for ch in range(3)]
        )
        assert got[i].item() == pytest.approx(ref, abs=1e-10)


def test_ssim_same_padding_matches_zero_padded_reference():
    x, y = _pair(b=1, h=16, w=18)
    got = ssim(x, y, padding="same")
    ref = np.mean(
        [_ssim_reference(x[0, ..., ch].numpy(), y[0, ..., ch].numpy(), pad=5) for ch in range(3)]
    )
    assert got[0].item() == pytest.approx(ref, abs=1e-10)
    m = ssim_map(x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2), padding="same")
    assert m.shape == (1, 3, 16, 18)


def test_ssim_float32_close_to_float64_and_identity_is_one():
    x, y = _pair()
    assert torch.allclose(ssim(x.float(), y.float()).double(), ssim(x, y), atol=1e-5)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64), atol=1e-12)
    # Less similar pairs score lower.
    z = (x + 0.4 * torch.randn_like(x)).clamp(0, 1)
    assert (ssim(x, z) < ssim(x, y)).all()


def test_ssim_gradient_is_correct():
    x, y = _pair(b=1, h=13, w=12, c=1)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y).sum(), (x,))


def test_gaussian_window_is_normalised_gaussian():
    g = gaussian_window(11, 1.5, dtype=torch.float64)
    assert g.sum().item() == pytest.approx(1.0)
    assert g[5] / g[4] == pytest.approx(math.exp(1 / (2 * 1.5**2)))
    with pytest.raises(ValidationError):
        gaussian_window(10)


def test_ssim_rejects_bad_input():
    x, y = _pair()
    with pytest.raises(ValidationError, match="target"):
        ssim(x, y[:, :-1])
    with pytest.raises(ValidationError, match="11x11"):
        ssim(x[:, :8, :8], y[:, :8, :8])
    with pytest.raises(ValidationError, match=r"\[B, H, W, C\]"):
        ssim(x[0], y[0])


def test_psnr_formula():
    x = torch.rand(3, 8, 8, 3)
    d = torch.tensor([0.1, 0.01, 0.5])
    y = x + d.view(3, 1, 1, 1)
    got = psnr(y, x)
    assert got.shape == (3,)
    assert torch.allclose(got, -20 * torch.log10(d), atol=1e-3)
    # data_range R scales the peak: PSNR = 10 log10(R^2 / MSE).
    assert psnr(255 * y, 255 * x, data_range=255.0) == pytest.approx(got, abs=1e-3)
    # Identical images: capped, finite.
    assert psnr(x, x).isfinite().all() and psnr(x, x)[0].item() == pytest.approx(100.0)


def test_psnr_rejects_bad_input():
    with pytest.raises(ValidationError, match="target"):
        psnr(torch.rand(2, 4, 4, 3), torch.rand(2, 4, 5, 3))
    with pytest.raises(ValidationError, match="floating-point"):
        psnr(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), torch.zeros(2, 4, 4, 3, dtype=torch.uint8))
