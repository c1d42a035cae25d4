"""Samplers over any DiffusionPrior: exact answers on a point-mass prior, DDIM against its
formula on tiny Zero123, seeds, DreamGaussian's refine, and CUDA-graph replay (GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from gs_core.errors import ValidationError
from gs_priors import Condition


def sd_alphas() -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


@dataclass(frozen=True)
class TargetCondition(Condition):
    target: torch.Tensor  # [B, C, h, w]
    null_target: torch.Tensor


class PointMassPrior:
    """The exact denoiser of a point mass at the condition's target, in any prediction type:
    every sampler must end exactly there (and at ``u + s (c - u)`` under guidance)."""

    num_train_timesteps = 1000

    def __init__(self, prediction_type: str):
        self.prediction_type = prediction_type
        self.alphas_cumprod = sd_alphas()

    def encode_images(self, images, generator=None):
        return images

    def decode_latents(self, latents):
        return latents

    def null_condition(self, condition):
        return TargetCondition(target=condition.null_target, null_target=condition.null_target)

    def model_output(self, latents_t, t, condition):
        ab = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x0 = condition.target
        eps = (latents_t - ab.sqrt() * x0) / (1 - ab).sqrt()
        if self.prediction_type == "epsilon":
            return eps
        if self.prediction_type == "v_prediction":
            return ab.sqrt() * eps - (1 - ab).sqrt() * x0
        return x0.expand_as(latents_t)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpmpp", "euler_a"])
def test_every_sampler_lands_on_a_point_mass_with_guidance(sampler, prediction_type):
    from gs_priors.samplers import sample

    g = torch.Generator().manual_seed(0)
    c, u = torch.randn(1, 4, 3, 3, generator=g), torch.randn(1, 4, 3, 3, generator=g)
    prior = PointMassPrior(prediction_type)
    cond = TargetCondition(target=c, null_target=u)
    if sampler == "euler_a" and prediction_type == "sample":
        with pytest.raises(ValidationError, match="Euler ancestral takes epsilon or v"):
            sample(prior, cond, (2, 4, 3, 3), sampler=sampler, steps=10)
        return
    # DDIM's last step goes to alpha_bar = 1 only with set_alpha_to_one.
    options = {"set_alpha_to_one": True} if sampler == "ddim" else {}
    for scale, expected in ((1.0, c), (3.0, u + 3.0 * (c - u))):
        result = sample(
            prior, cond, (2, 4, 3, 3), sampler=sampler, steps=10, guidance_scale=scale,
            generator=torch.Generator().manual_seed(1), **options,
        )  # fmt: skip
        assert torch.allclose(result.latents, expected.expand(2, -1, -1, -1), atol=2e-3), (
            (result.latents - expected).abs().max()
        )
        assert result.endpoints()["noise"] is result.noise and len(result.timesteps) == 10


@pytest.fixture(scope="module")
def z123(tmp_path_factory):
    from gs_priors import Zero123Guidance
    from gs_priors.tiny import save_tiny_zero123

    return Zero123Guidance.from_pretrained(save_tiny_zero123(tmp_path_factory.mktemp("z123")))


@pytest.fixture(scope="module")
def z123_cond(z123):
    ref = z123.encode_reference(
        torch.rand(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    )
    return z123.camera_condition(ref, torch.tensor([10.0, -20.0]), torch.tensor([30.0, 120.0]))


def test_schedulers_share_the_priors_schedule(z123):
    from gs_priors.samplers import make_scheduler

    for name in ("ddim", "ddpm", "dpmpp", "euler_a"):
        sched = make_scheduler(z123, name)
        assert torch.allclose(sched.alphas_cumprod, z123.alphas_cumprod, rtol=1e-5, atol=1e-7)
        assert sched.config.prediction_type == "epsilon"
    sched = make_scheduler(z123, "ddim", timestep_spacing="trailing")
    sched.set_timesteps(4)
    assert sched.timesteps.tolist() == [999, 749, 499, 249]
    with pytest.raises(ValidationError, match="sampler"):
        make_scheduler(z123, "euler")


def test_ddim_is_the_deterministic_probability_flow_step(z123, z123_cond):
    from gs_priors.samplers import GuidedDenoiser, sample

    shape = (2, 4, 8, 8)
    a = sample(
        z123,
        z123_cond,
        shape,
        steps=5,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(3),
    )
    b = sample(
        z123,
        z123_cond,
        shape,
        steps=5,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(3),
    )
    c = sample(
        z123,
        z123_cond,
        shape,
        steps=5,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(4),
    )
    assert torch.equal(a.latents, b.latents) and torch.equal(a.noise, b.noise)
    assert not torch.allclose(a.latents, c.latents)
    # DDIM, eta 0, written out: x0 = (x - s eps) / a, x_prev = a_prev x0 + s_prev eps.
    ab = z123.alphas_cumprod.double()
    assert a.timesteps.tolist() == [801, 601, 401, 201, 1]
    denoise = GuidedDenoiser(z123, z123_cond, 3.0, batch_size=2)
    x = a.noise.double()
    for t in a.timesteps.tolist():
        eps = denoise(x.float(), t).double()
        prev = ab[t - 200] if t - 200 >= 0 else ab[0]
        x0 = (x - (1 - ab[t]).sqrt() * eps) / ab[t].sqrt()
        x = prev.sqrt() * x0 + (1 - prev).sqrt() * eps
    assert torch.allclose(a.latents.double(), x, atol=1e-3 * x.abs().max())
    # A denoiser is reusable across samples and conditions.
    again = sample(z123, z123_cond, shape, steps=5, noise=a.noise, denoiser=denoise)
    assert torch.equal(again.latents, a.latents)
    with pytest.raises(ValidationError, match="guidance_scale"):
        sample(z123, z123_cond, shape, steps=5, guidance_scale=2.0, denoiser=denoise)


def test_guidance_rescale_pulls_the_spread_back_to_the_conditional_outputs(z123, z123_cond):
    from gs_priors.samplers import GuidedDenoiser, sample

    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    both = z123.model_output(
        torch.cat([x, x]),
        torch.full((4,), 700),
        type(z123_cond).cat([z123.null_condition(z123_cond), z123_cond]),
    )
    uncond, cond = both.float().chunk(2)
    guided = uncond + 5.0 * (cond - uncond)
    out = {
        phi: GuidedDenoiser(z123, z123_cond, 5.0, 2, guidance_rescale=phi)(x, 700)
        for phi in (0.0, 0.5, 1.0)
    }
    torch.testing.assert_close(out[0.0], guided, rtol=1e-5, atol=1e-6)
    # phi 1: each sample's spread is the conditional output's, its direction the guided one's
    std = lambda v: v.flatten(1).std(dim=1)  # noqa: E731
    torch.testing.assert_close(std(out[1.0]), std(cond), rtol=1e-4, atol=1e-6)
    ratio = out[1.0] / guided
    torch.testing.assert_close(ratio, ratio.flatten(1)[:, :1, None, None].expand_as(ratio))
    assert (std(guided) > 1.5 * std(cond)).all()  # guidance 5 did inflate it
    torch.testing.assert_close(out[0.5], (out[0.0] + out[1.0]) / 2, rtol=1e-5, atol=1e-6)
    # Guidance 1 has no unconditional branch to pull away from: nothing to rescale.
    torch.testing.assert_close(
        GuidedDenoiser(z123, z123_cond, 1.0, 2, guidance_rescale=1.0)(x, 700), cond
    )
    for bad in (-0.1, 1.5):
        with pytest.raises(ValidationError, match="guidance_rescale"):
            GuidedDenoiser(z123, z123_cond, 5.0, 2, guidance_rescale=bad)
    # Through sample(): seeded, different from phi 0, and a reused denoiser keeps its phi.
    kw = {"steps": 3, "guidance_scale": 5.0}
    g = torch.Generator().manual_seed(6)
    a = sample(z123, z123_cond, (2, 4, 8, 8), generator=g, guidance_rescale=0.7, **kw)
    b = sample(z123, z123_cond, (2, 4, 8, 8), noise=a.noise, **kw)
    assert not torch.allclose(a.latents, b.latents)
    d = GuidedDenoiser(z123, z123_cond, 5.0, 2, guidance_rescale=0.7)
    c = sample(z123, z123_cond, (2, 4, 8, 8), steps=3, noise=a.noise, denoiser=d)
    torch.testing.assert_close(c.latents, a.latents)
    with pytest.raises(ValidationError, match="guidance_rescale"):
        sample(z123, z123_cond, (2, 4, 8, 8), steps=3, denoiser=d, guidance_rescale=0.0)


def test_ddpm_euler_a_and_dpmpp_are_seeded(z123, z123_cond):
    from gs_priors.samplers import sample

    shape = (2, 4, 8, 8)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(5))

    def ddpm(seed):
        g = torch.Generator().manual_seed(seed)
        return sample(z123, z123_cond, shape, sampler="ddpm", steps=4, noise=noise, generator=g)

    d1, d2, d3 = ddpm(6), ddpm(6), ddpm(7)
    assert torch.equal(d1.latents, d2.latents)
    # Same start, different per-step noise.
    assert not torch.allclose(d1.latents, d3.latents)

    def euler_a(seed):
        g = torch.Generator().manual_seed(seed)
        return sample(z123, z123_cond, shape, sampler="euler_a", steps=4, noise=noise, generator=g)

    e1, e2, e3 = euler_a(6), euler_a(6), euler_a(7)
    assert torch.equal(e1.latents, e2.latents) and not torch.allclose(e1.latents, e3.latents)
    assert not torch.allclose(e1.latents, d1.latents)  # another sampler, not DDPM renamed
    p1 = sample(z123, z123_cond, shape, sampler="dpmpp", steps=4, noise=noise)
    p2 = sample(z123, z123_cond, shape, sampler="dpmpp", steps=4, noise=noise)
    assert torch.equal(p1.latents, p2.latents) and torch.isfinite(p1.latents).all()
    with pytest.raises(ValidationError, match="noise"):
        sample(z123, z123_cond, shape, noise=torch.zeros(1, 4, 8, 8))


def test_refine_skips_strength_of_the_ddim_steps_as_dreamgaussian(z123, z123_cond):
    from gs_priors.samplers import make_scheduler, refine, sample

    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(8))
    # Every step skipped: the input comes back untouched.
    same = refine(z123, latents, z123_cond, strength=1.0, guidance_scale=5.0)
    assert torch.equal(same.latents, latents) and len(same.timesteps) == 0
    # strength 0.8 of 50 steps: start at index 40 (t = 181), run the remaining 10 steps.
    g = torch.Generator().manual_seed(9)
    out = refine(z123, latents, z123_cond, strength=0.8, steps=50, guidance_scale=5.0, generator=g)
    sched = make_scheduler(z123, "ddim")
    sched.set_timesteps(50)
    assert out.timesteps.tolist() == sched.timesteps[40:].tolist() and out.timesteps[0] == 181
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(9))
    start = sched.add_noise(latents, noise, sched.timesteps[40:41])
    assert torch.allclose(out.noise, start, atol=1e-6)
    ab = z123.alphas_cumprod[181]
    assert torch.allclose(out.noise, ab.sqrt() * latents + (1 - ab).sqrt() * noise, atol=1e-5)
    # The rest is plain DDIM from that start.
    x = start
    for t in out.timesteps:
        from gs_priors.samplers import GuidedDenoiser

        eps = GuidedDenoiser(z123, z123_cond, 5.0, 2)(x, t)
        x = sched.step(eps, t, x).prev_sample
    assert torch.allclose(out.latents, x, atol=1e-5)
    # Strength 0: DreamGaussian starts from pure noise, i.e. a full sample.
    full = sample(
        z123,
        z123_cond,
        (2, 4, 8, 8),
        steps=6,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(10),
    )
    zero = refine(
        z123,
        latents,
        z123_cond,
        strength=0.0,
        steps=6,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(10),
    )
    assert torch.equal(full.latents, zero.latents)
    with pytest.raises(ValidationError, match="strength"):
        refine(z123, latents, z123_cond, strength=1.5)


def test_samplers_run_on_zero123plus(tmp_path):
    from gs_priors.samplers import refine, sample
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE, save_tiny_zero123plus
    from gs_priors.zero123plus import Zero123PlusGuidance

    zpp = Zero123PlusGuidance.from_pretrained(
        save_tiny_zero123plus(tmp_path / "zpp"), view_size=TINY_ZERO123PLUS_VIEW_SIZE
    )
    cond = zpp.encode_reference(
        torch.rand(1, 3, 12, 12), generator=torch.Generator().manual_seed(11), fixed_noise=True
    )
    shape = zpp.latent_shape(1)
    # With fixed reference noise the denoiser is deterministic, and so is DDIM.
    a = sample(
        zpp, cond, shape, steps=3, guidance_scale=4.0, generator=torch.Generator().manual_seed(12)
    )
    b = sample(
        zpp, cond, shape, steps=3, guidance_scale=4.0, generator=torch.Generator().manual_seed(12)
    )
    assert torch.equal(a.latents, b.latents)
    # The checkpoint's own spacing ("linspace") unless overridden.
    assert a.timesteps.tolist() == [999, 500, 0]
    r = refine(zpp, a.latents, cond, strength=0.5, steps=4, guidance_scale=4.0)
    assert r.timesteps.tolist() == [333, 0] and torch.isfinite(r.latents).all()
    # The shipped scheduler's sampler: Euler ancestral on the checkpoint's linspace timesteps,
    # which fall between integers (the U-Net gets the nearest).
    e = sample(zpp, cond, shape, sampler="euler_a", steps=4, guidance_scale=4.0,
               generator=torch.Generator().manual_seed(12))  # fmt: skip
    assert e.timesteps.tolist() == pytest.approx([999.0, 666.0, 333.0, 0.0])
    assert torch.isfinite(e.latents).all() and not torch.allclose(e.latents, a.latents)


@pytest.mark.gpu
def test_graphed_sampling_replays_the_eager_result(tmp_path):
    from gs_priors import Zero123Guidance
    from gs_priors.samplers import GuidedDenoiser, sample
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE, save_tiny_zero123, save_tiny_zero123plus
    from gs_priors.zero123plus import Zero123PlusGuidance

    z = Zero123Guidance.from_pretrained(save_tiny_zero123(tmp_path / "z"), device="cuda")
    ref = z.encode_reference(torch.rand(1, 4, 16, 16, device="cuda"))
    cond = z.camera_condition(ref, torch.tensor([10.0]), torch.tensor([45.0]))
    kw = {"steps": 5, "guidance_scale": 3.0}
    eager = sample(z, cond, (1, 4, 8, 8), generator=torch.Generator().manual_seed(0), **kw)
    graphed = sample(
        z, cond, (1, 4, 8, 8), generator=torch.Generator().manual_seed(0), graphed=True, **kw
    )
    assert torch.allclose(eager.latents, graphed.latents, atol=1e-4)
    denoiser = GuidedDenoiser(z, cond, 3.0, 1, graphed=True)
    x = torch.randn(1, 4, 8, 8, device="cuda")
    for t in (900, 500, 100):
        expected = GuidedDenoiser(z, cond, 3.0, 1)(x, t)
        assert torch.allclose(denoiser(x, t), expected, atol=1e-4)
    # One recording, replayed at every timestep and in every sample that reuses the denoiser.
    sample(z, cond, (1, 4, 8, 8), steps=3, denoiser=denoiser)
    assert len(denoiser._call._recordings) == 1

    zpp = Zero123PlusGuidance.from_pretrained(
        save_tiny_zero123plus(tmp_path / "zpp"), device="cuda", view_size=TINY_ZERO123PLUS_VIEW_SIZE
    )
    c = zpp.encode_reference(
        torch.rand(1, 3, 12, 12, device="cuda"),
        generator=torch.Generator("cuda").manual_seed(1),
        fixed_noise=True,
    )
    e = sample(zpp, c, zpp.latent_shape(1), generator=torch.Generator().manual_seed(2), **kw)
    g = sample(
        zpp, c, zpp.latent_shape(1), generator=torch.Generator().manual_seed(2), graphed=True, **kw
    )
    assert torch.allclose(e.latents, g.latents, atol=1e-4)
    # Fresh reference noise inside the graph comes from the default CUDA generator, per replay.
    fresh = zpp.encode_reference(torch.rand(1, 3, 12, 12, device="cuda"))
    d = GuidedDenoiser(zpp, fresh, 4.0, 1, graphed=True)
    x = torch.randn(zpp.latent_shape(1), device="cuda")
    assert not torch.allclose(d(x, 500), d(x, 500))
    with pytest.raises(ValidationError, match="graphed"):
        GuidedDenoiser(zpp.to("cpu"), fresh.to("cpu"), 4.0, 1, graphed=True)


@pytest.mark.gpu
def test_graphed_sampling_never_waits_for_the_gpu(tmp_path):
    # Host timesteps, a cached schedule and timesteps filled in on the device: once the graph
    # is recorded, a whole DDIM sample runs without one host synchronisation.
    from gs_priors import Zero123Guidance
    from gs_priors.samplers import GuidedDenoiser, sample
    from gs_priors.tiny import save_tiny_zero123

    z = Zero123Guidance.from_pretrained(save_tiny_zero123(tmp_path / "z"), device="cuda")
    ref = z.encode_reference(torch.rand(1, 4, 16, 16, device="cuda"))
    cond = z.camera_condition(ref, torch.tensor([10.0]), torch.tensor([45.0]))
    denoiser = GuidedDenoiser(z, cond, 3.0, 1, graphed=True)
    first = sample(z, cond, (1, 4, 8, 8), steps=6, denoiser=denoiser,
                   generator=torch.Generator("cuda").manual_seed(0))  # fmt: skip
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        again = sample(z, cond, (1, 4, 8, 8), steps=6, denoiser=denoiser,
                       generator=torch.Generator("cuda").manual_seed(0))  # fmt: skip
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(first.latents, again.latents)


def test_host_timesteps_denoise_as_device_ones(tmp_path):
    from gs_priors import Zero123Guidance
    from gs_priors.samplers import GuidedDenoiser, sample
    from gs_priors.tiny import save_tiny_zero123

    z = Zero123Guidance.from_pretrained(save_tiny_zero123(tmp_path / "z"))
    ref = z.encode_reference(torch.rand(1, 4, 16, 16))
    cond = z.camera_condition(ref, torch.tensor([10.0]), torch.tensor([45.0]))
    d = GuidedDenoiser(z, cond, 3.0, 1)
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(d(x, 500), d(x, torch.tensor(500)))
    assert torch.equal(d(x, 500), d(x, torch.tensor([500])))
    result = sample(z, cond, (1, 4, 8, 8), steps=4, generator=torch.Generator().manual_seed(0))
    assert result.timesteps.device.type == "cpu"
