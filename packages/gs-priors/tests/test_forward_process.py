"""The forward process and the prediction-type conversions every prior's users share."""

from __future__ import annotations

import pytest
import torch

from gs_core.errors import ValidationError
from gs_priors.forward_process import add_noise, prediction_target, to_epsilon, to_sample
from gs_priors.prior import PREDICTION_TYPES

ALPHAS = torch.cumprod(1 - torch.linspace(1e-4, 2e-2, 1000), 0)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_each_target_converts_back_to_its_noise_and_sample(prediction_type):
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    t = torch.tensor([0, 250, 600, 999])
    xt = add_noise(x0, noise, t, ALPHAS)
    a = ALPHAS[t].sqrt().view(-1, 1, 1, 1)
    torch.testing.assert_close(xt, a * x0 + (1 - a**2).sqrt() * noise)
    target = prediction_target(x0, noise, t, ALPHAS, prediction_type)
    torch.testing.assert_close(to_epsilon(target, xt, t, ALPHAS, prediction_type), noise)
    # x0 from an epsilon prediction divides by sqrt(alpha_bar), small at t = 999
    tol = 1e-3 if prediction_type == "epsilon" else 1e-5
    torch.testing.assert_close(
        to_sample(target, xt, t, ALPHAS, prediction_type), x0, atol=tol, rtol=tol
    )


def test_v_is_the_velocity_of_the_noised_sample():
    x0, noise, t = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.tensor([500])
    a, s = ALPHAS[500].sqrt(), (1 - ALPHAS[500]).sqrt()
    v = prediction_target(x0, noise, t, ALPHAS, "v_prediction")
    assert float(v) == pytest.approx(float(-s))
    assert float(to_sample(v, add_noise(x0, noise, t, ALPHAS), t, ALPHAS, "v_prediction")) == (
        pytest.approx(float(a * a + s * s))
    )


def test_the_coefficients_take_the_scaled_tensors_dtype():
    x0 = torch.randn(2, 4, 3, 3, dtype=torch.bfloat16)
    t = torch.tensor([10, 900])
    assert add_noise(x0, torch.randn_like(x0), t, ALPHAS).dtype == torch.bfloat16


@pytest.mark.parametrize("fn", [to_epsilon, to_sample, prediction_target])
def test_an_unknown_prediction_type_is_named(fn):
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValidationError, match="prediction_type"):
        fn(x, x, torch.tensor([1]), ALPHAS, "flow")
