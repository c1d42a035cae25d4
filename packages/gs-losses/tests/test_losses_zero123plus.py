"""SDS / VSD over gs-priors' Zero123++ prior (GECO's teacher) on a tiny random checkpoint."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from gs_losses import SDS, VSD, SDSConfig, VSDConfig
from gs_losses.guidance import add_noise, guided_noise, sds_weight

# Nothing here may reach the hub: the tiny checkpoints are local, official ids must fail at once.
pytestmark = pytest.mark.usefixtures("offline_hub")


@pytest.fixture(scope="module")
def zpp(tmp_path_factory):
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE, save_tiny_zero123plus
    from gs_priors.zero123plus import Zero123PlusGuidance

    directory = save_tiny_zero123plus(tmp_path_factory.mktemp("tiny-zero123plus"))
    return Zero123PlusGuidance.from_pretrained(directory, view_size=TINY_ZERO123PLUS_VIEW_SIZE)


def test_sds_on_six_tiled_views_is_the_guided_v_prior(zpp):
    from gs_priors.zero123plus import tile_views

    cond = zpp.encode_reference(
        torch.rand(1, 4, 12, 12), generator=torch.Generator().manual_seed(0), fixed_noise=True
    )
    views = torch.rand(2, 6, 3, 8, 8, requires_grad=True)
    t = torch.tensor([300, 700])
    noise = torch.randn(2, 4, 12, 8, generator=torch.Generator().manual_seed(1))
    out = SDS(zpp, SDSConfig(guidance_scale=4.0)).compute(tile_views(views), cond, t=t, noise=noise)
    out.loss.backward()
    assert out.latents.shape == (2, 4, 12, 8)
    assert torch.isfinite(views.grad).all() and views.grad.abs().sum() > 0
    assert not any(p.grad is not None for p in zpp.parameters())
    with torch.no_grad():
        z_t = add_noise(out.latents.detach(), noise, t, zpp.alphas_cumprod)
        # v-prediction, guided in epsilon space: eps = s x_t + a v for each branch.
        v_c = zpp.model_output(z_t, t, cond.expand_batch(2))
        v_u = zpp.model_output(z_t, t, zpp.null_condition(cond).expand_batch(2))
        ab = zpp.alphas_cumprod[t].view(-1, 1, 1, 1)
        eps_c = (1 - ab).sqrt() * z_t + ab.sqrt() * v_c
        eps_u = (1 - ab).sqrt() * z_t + ab.sqrt() * v_u
        eps = eps_u + 4.0 * (eps_c - eps_u)
        assert torch.allclose(guided_noise(zpp, z_t, t, cond, 4.0), eps, atol=1e-4)
        w = sds_weight(t, zpp.alphas_cumprod, "sds").view(-1, 1, 1, 1)
        assert torch.allclose(out.grad, w * (eps - noise), atol=1e-4)


def test_vsd_with_geco_full_unet_student(zpp):
    from gs_priors import copy_student

    student = copy_student(zpp)
    cond = zpp.encode_reference(
        torch.rand(1, 3, 12, 12), generator=torch.Generator().manual_seed(2), fixed_noise=True
    )
    # Equal CFG and an untrained copy: the first VSD gradient is exactly zero.
    vsd = VSD(zpp, student, VSDConfig(guidance_scale=1.0, student_guidance_scale=1.0))
    grid = torch.nn.Parameter(torch.rand(1, 3, 24, 16))
    first = vsd.compute(grid, cond, generator=torch.Generator().manual_seed(3))
    assert first.grad.abs().max().item() < 1e-5
    # GECO's scales: teacher 4, student 1; the two terms reach disjoint parameters.
    vsd = VSD(zpp, student, VSDConfig(guidance_scale=4.0, student_guidance_scale=1.0))
    terms = vsd(grid, cond, generator=torch.Generator().manual_seed(4))
    terms["student"].backward()
    assert grid.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.unet.parameters())
    terms["vsd"].backward()
    assert grid.grad is not None and grid.grad.abs().sum() > 0
    assert all(p.grad is None for p in zpp.unet.parameters())
