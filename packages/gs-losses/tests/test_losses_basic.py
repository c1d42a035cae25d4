"""Image losses, regularisers and term weighting against their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from gs_core.errors import ValidationError
from gs_losses import (
    kl_divergence,
    l1_loss,
    mse_loss,
    opacity_regularizer,
    prefixed,
    psnr,
    rgba_loss,
    ssim,
    ssim_loss,
    weighted_sum,
)


def test_l1_mse_plain_and_masked():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(2, 3, 5, 4, generator=g), torch.rand(2, 3, 5, 4, generator=g)
    assert l1_loss(p, t).item() == pytest.approx((p - t).abs().mean().item())
    assert mse_loss(p, t).item() == pytest.approx(((p - t) ** 2).mean().item())
    mask = (torch.rand(2, 1, 5, 4, generator=g) > 0.5).float()
    # Brute force: average over the selected pixels and all 3 channels.
    sel = mask.expand_as(p).bool()
    assert l1_loss(p, t, mask).item() == pytest.approx((p - t).abs()[sel].mean().item(), rel=1e-6)
    assert mse_loss(p, t, mask).item() == pytest.approx(((p - t) ** 2)[sel].mean().item(), rel=1e-6)
    # Soft masks weight pixels.
    soft = torch.rand(2, 1, 5, 4, generator=g)
    ref = ((p - t).abs() * soft).sum() / (soft.expand_as(p)).sum()
    assert l1_loss(p, t, soft).item() == pytest.approx(ref.item(), rel=1e-6)
    assert mse_loss(p, t, torch.zeros(2, 1, 5, 4)).item() == 0.0
    with pytest.raises(ValidationError, match="mask"):
        l1_loss(p, t, torch.ones(3, 1, 1, 1))
    with pytest.raises(ValidationError, match="target"):
        mse_loss(p, t[:, :2])


def test_rgba_loss_terms():
    g = torch.Generator().manual_seed(1)
    rgb, trgb = torch.rand(2, 8, 8, 3, generator=g), torch.rand(2, 8, 8, 3, generator=g)
    a, ta = torch.rand(2, 8, 8, generator=g), torch.rand(2, 8, 8, generator=g)
    terms = rgba_loss(rgb, a, trgb, ta)
    assert set(terms) == {"rgb", "alpha"}
    assert terms["rgb"].item() == pytest.approx((rgb - trgb).abs().mean().item())
    assert terms["alpha"].item() == pytest.approx((a - ta).abs().mean().item())
    terms = rgba_loss(rgb, a, trgb, ta, kind="mse")
    total = weighted_sum(terms, {"lambda_rgb": 10000.0, "lambda_alpha": 1000.0})
    ref = 10000 * ((rgb - trgb) ** 2).mean() + 1000 * ((a - ta) ** 2).mean()
    assert total.item() == pytest.approx(ref.item(), rel=1e-6)
    with pytest.raises(ValidationError, match="kind"):
        rgba_loss(rgb, a, trgb, ta, kind="huber")


def test_weighted_sum_requires_matching_weights():
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(3.0)}
    assert weighted_sum(terms, {"a": 1.0, "lambda_b": 0.5}).item() == pytest.approx(3.5)
    assert weighted_sum(terms, {"a": 0.0, "b": 0.0}).item() == 0.0
    with pytest.raises(ValidationError, match="lambda_b"):
        weighted_sum(terms, {"a": 1.0})
    with pytest.raises(ValidationError, match="lambda_c"):
        weighted_sum(terms, {"a": 1.0, "b": 1.0, "c": 1.0})
    assert set(prefixed(terms, "ref")) == {"ref_a", "ref_b"}


def test_opacity_regularizer_formula_and_gradient():
    a = torch.tensor([[0.5, 0.25], [1.0, 0.1]], requires_grad=True)
    out = opacity_regularizer(a, eps=0.0)["opacity"]
    ref = -(math.log(0.5) + math.log(0.25) + math.log(1.0) + math.log(0.1)) / 4
    assert out.item() == pytest.approx(ref, rel=1e-6)
    out.backward()
    assert torch.allclose(a.grad, -1 / (4 * a.detach()))
    # Fully transparent Gaussians: finite value and a strong finite push towards opaque.
    z = torch.zeros(3, requires_grad=True)
    val = opacity_regularizer(z)["opacity"]
    val.backward()
    assert math.isfinite(val.item()) and val.item() == pytest.approx(-math.log(1e-6))
    assert torch.isfinite(z.grad).all() and (z.grad < 0).all()


def test_kl_divergence_matches_closed_form_and_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p)  # per element
    assert torch.allclose(kl_divergence(mu, logvar, "none")["kl"], ref.flatten(1).sum(1), atol=1e-5)
    assert kl_divergence(mu, logvar)["kl"].item() == pytest.approx(
        ref.flatten(1).sum(1).mean().item(), rel=1e-5
    )
    assert kl_divergence(mu, logvar, "mean")["kl"].item() == pytest.approx(
        ref.mean().item(), rel=1e-5
    )
    zero = kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3))["kl"]
    assert zero.item() == 0.0
    with pytest.raises(ValidationError, match="logvar"):
        kl_divergence(mu, logvar[:, :2])


def test_ssim_and_psnr_reexports():
    x = torch.rand(2, 16, 16, 3)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert psnr(x, x).shape == (2,)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    xc, yc = x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2).requires_grad_(True)
    loss = ssim_loss(yc, xc, padding="valid")["ssim"]
    assert loss.item() == pytest.approx(1 - ssim(y, x).mean().item(), abs=1e-6)
    loss.backward()
    assert yc.grad is not None and torch.isfinite(yc.grad).all()
