"""SDS / VSD / CFG / noise maths with a stub prior, against the formulas and diffusers' scheduler."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from gs_core.errors import GS3DError, ValidationError
from gs_losses import SDS, VSD, SDSConfig, TimestepSchedule, VSDConfig
from gs_losses.guidance import (
    add_noise,
    guided_noise,
    prediction_target,
    surrogate_loss,
    to_epsilon,
)
from gs_priors import Condition, DiffusionPrior

T = 1000


def sd_alphas() -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, T, dtype=torch.float32) ** 2
    return torch.cumprod(1 - betas, 0)


@dataclass(frozen=True)
class StubCondition(Condition):
    bias: torch.Tensor  # [B]


class StubPrior:
    """Identity 'encoder'; model output = a x_t + bias + c t (per sample), any prediction type."""

    def __init__(self, prediction_type="epsilon", a=0.5, c=1e-3):
        self._pt = prediction_type
        self.a, self.c = a, c
        self.calls = []

    num_train_timesteps = T

    @property
    def alphas_cumprod(self):
        return sd_alphas()

    @property
    def prediction_type(self):
        return self._pt

    def encode_images(self, images, generator=None):
        return images * 2 - 1

    def decode_latents(self, latents):
        return (latents + 1) / 2

    def model_output(self, latents_t, t, condition):
        self.calls.append(latents_t.shape[0])
        shape = (-1,) + (1,) * (latents_t.ndim - 1)
        return self.a * latents_t + condition.bias.view(shape) + self.c * t.float().view(shape)

    def null_condition(self, condition):
        return StubCondition(bias=torch.zeros_like(condition.bias))


def test_stub_satisfies_protocol():
    assert isinstance(StubPrior(), DiffusionPrior)
    with pytest.raises(ValidationError, match="DiffusionPrior"):
        SDS(object())


def test_a_wrapper_delegating_only_through_getattr_is_rejected_on_every_python():
    # isinstance() on a runtime protocol looks members up statically from Python 3.12; the
    # check does so everywhere, so CI on 3.11 catches what would fail on a 3.12 GPU machine.
    class Delegating:
        def __init__(self, prior):
            self._prior = prior

        def model_output(self, latents_t, t, condition):
            return self._prior.model_output(latents_t, t, condition)

        def __getattr__(self, name):
            if name.startswith("_"):
                raise AttributeError(name)
            return getattr(self._prior, name)

    with pytest.raises(ValidationError, match="lacking .*num_train_timesteps"):
        SDS(Delegating(StubPrior()))


def test_add_noise_and_conversions_match_diffusers():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 4, 8, 8, generator=g), torch.randn(4, 4, 8, 8, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    ab = sched.alphas_cumprod
    assert torch.allclose(ab, sd_alphas(), atol=1e-6)
    x_t = add_noise(x0, eps, t, ab)
    assert torch.allclose(x_t, sched.add_noise(x0, eps, t), atol=1e-6)
    v = prediction_target(x0, eps, t, ab, "v_prediction")
    assert torch.allclose(v, sched.get_velocity(x0, eps, t), atol=1e-6)
    assert torch.equal(prediction_target(x0, eps, t, ab, "epsilon"), eps)
    assert torch.equal(prediction_target(x0, eps, t, ab, "sample"), x0)
    # A perfect model of each kind yields the true noise.
    assert torch.allclose(to_epsilon(v, x_t, t, ab, "v_prediction"), eps, atol=1e-5)
    assert torch.allclose(to_epsilon(x0, x_t, t[:], ab, "sample")[1:], eps[1:], atol=1e-4)
    with pytest.raises(ValidationError):
        to_epsilon(v, x_t, t, ab, "flow")


def test_guided_noise_single_and_compositional_cfg():
    prior = StubPrior()
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(3, 2, 4, 4, generator=g)
    t = torch.tensor([5, 50, 500])
    c1 = StubCondition(bias=torch.tensor([1.0, 2.0, 3.0]))
    c2 = StubCondition(bias=torch.tensor([-1.0]))  # batch 1 broadcasts

    def raw(bias):
        return 0.5 * x_t + bias.view(-1, 1, 1, 1) + 1e-3 * t.float().view(-1, 1, 1, 1)

    e_u, e_1, e_2 = raw(torch.zeros(3)), raw(c1.bias), raw(c2.bias.expand(3))
    assert torch.allclose(guided_noise(prior, x_t, t, c1, 5.0), e_u + 5.0 * (e_1 - e_u), atol=1e-5)
    got = guided_noise(prior, x_t, t, [c1, c2], [2.0, 3.0])
    assert torch.allclose(got, e_u + 2.0 * (e_1 - e_u) + 3.0 * (e_2 - e_u), atol=1e-5)
    # Unbatched evaluation gives the same result with one forward per condition.
    prior.calls.clear()
    assert torch.allclose(
        guided_noise(prior, x_t, t, [c1, c2], [2.0, 3.0], batched=False), got, atol=1e-5
    )
    assert prior.calls == [3, 3, 3]
    # Scale 1 with one condition: no unconditional pass at all.
    prior.calls.clear()
    assert torch.allclose(guided_noise(prior, x_t, t, c1, 1.0), e_1)
    assert prior.calls == [3]
    with pytest.raises(ValidationError, match="one scale per condition"):
        guided_noise(prior, x_t, t, [c1, c2], [1.0])


def test_cfg_in_v_space_equals_cfg_in_eps_space():
    prior = StubPrior("v_prediction")
    x_t = torch.randn(2, 4, 4, 4)
    t = torch.tensor([100, 700])
    c = StubCondition(bias=torch.tensor([0.3, -0.2]))
    ab = prior.alphas_cumprod
    v_u = prior.model_output(x_t, t, prior.null_condition(c))
    v_c = prior.model_output(x_t, t, c)
    expected = to_epsilon(v_u + 7.5 * (v_c - v_u), x_t, t, ab, "v_prediction")
    assert torch.allclose(guided_noise(prior, x_t, t, c, 7.5), expected, atol=1e-5)


def test_sds_gradient_equals_weighted_noise_residual_exactly():
    prior = StubPrior()
    sds = SDS(prior, SDSConfig(guidance_scale=5.0))
    g = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 8, 8, generator=g, requires_grad=True)
    noise = torch.randn(2, 3, 8, 8, generator=g)
    t = torch.tensor([30, 900])
    cond = StubCondition(bias=torch.tensor([0.5, -0.5]))
    out = sds.compute(images, cond, t=t, noise=noise)
    out.loss.backward()

    # Independent reference: x_t, CFG, w(t) = 1 - alpha_bar_t, all by hand.
    ab = sd_alphas()[t].view(-1, 1, 1, 1)
    z = images.detach() * 2 - 1
    x_t = ab.sqrt() * z + (1 - ab).sqrt() * noise
    e_u = 0.5 * x_t + 1e-3 * t.float().view(-1, 1, 1, 1)
    e_c = e_u + cond.bias.view(-1, 1, 1, 1)
    eps_hat = e_u + 5.0 * (e_c - e_u)
    grad_z = (1 - ab) * (eps_hat - noise)
    assert torch.allclose(out.grad, grad_z, atol=1e-6)
    # The gradient reaching the latents is exactly grad (identity encoder with dz/dx = 2).
    assert torch.equal(images.grad, 2 * out.grad)
    assert out.loss.item() == pytest.approx(0.5 * grad_z.square().sum().item(), rel=1e-5)
    assert torch.equal(out.t, t)
    assert torch.allclose(out.w, (1 - sd_alphas()[t]))


def test_sds_options_uniform_weighting_batch_mean_clip_and_latents():
    prior = StubPrior()
    cfg = SDSConfig(guidance_scale=2.0, weighting="uniform", reduction="batch_mean", grad_clip=0.05)
    sds = SDS(prior, cfg)
    z = torch.randn(4, 2, 4, 4, requires_grad=True)
    out = sds.compute(
        latents=z,
        condition=StubCondition(bias=torch.ones(1)),
        generator=torch.Generator().manual_seed(0),
    )
    out.loss.backward()
    assert torch.equal(out.w, torch.ones(4))
    assert out.grad.abs().max() <= 0.05 + 1e-7
    assert torch.allclose(z.grad, out.grad / 4)
    terms = sds(latents=z, condition=StubCondition(bias=torch.ones(1)))
    assert set(terms) == {"sds"}
    with pytest.raises(ValidationError, match="exactly one of images or latents"):
        sds.compute(condition=StubCondition(bias=torch.ones(1)))


def test_sds_mean_reduction_divides_by_every_latent_entry():
    """``"mean"`` puts ``grad / numel`` on the latents, commensurate with a mean-reduced image
    loss (DD3G's implicit verification beside its MSE); same ``t`` and noise as ``"sum"``."""
    prior = StubPrior()
    cond = StubCondition(bias=torch.ones(1))
    grads = {}
    for reduction in ("sum", "mean"):
        z = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1)).requires_grad_()
        out = SDS(prior, SDSConfig(guidance_scale=2.0, reduction=reduction)).compute(
            latents=z, condition=cond, generator=torch.Generator().manual_seed(0)
        )
        out.loss.backward()
        grads[reduction] = (z.grad, out)
    g_sum, o_sum = grads["sum"]
    g_mean, o_mean = grads["mean"]
    assert torch.equal(o_sum.grad, o_mean.grad)
    assert torch.allclose(g_mean, g_sum / 96)
    assert o_mean.loss.item() == pytest.approx(o_sum.loss.item() / 96, rel=1e-6)
    with pytest.raises(ValidationError, match="reduction"):
        surrogate_loss(torch.zeros(1, 1), torch.zeros(1, 1), "median")


def test_multiview_sds_shares_t_per_object():
    prior = StubPrior()
    sds = SDS(prior, SDSConfig(guidance_scale=3.0))
    views = torch.rand(2, 4, 3, 8, 8, requires_grad=True)  # [B, V, 3, H, W]
    cond = StubCondition(bias=torch.tensor([1.0, -1.0]))  # one per object
    out = sds.compute(views, cond, generator=torch.Generator().manual_seed(3))
    assert out.t.shape == (8,)
    assert (out.t[:4] == out.t[0]).all() and (out.t[4:] == out.t[4]).all()
    out.loss.backward()
    assert views.grad.shape == views.shape
    # The condition was repeated per view: views of object 0 saw bias +1.
    ref = sds.compute(
        views[:1].flatten(0, 1), StubCondition(bias=torch.ones(4)), t=out.t[:4], noise=out.noise[:4]
    )
    assert torch.allclose(ref.grad, out.grad[:4], atol=1e-6)


def test_sds_draws_the_latent_sample_from_the_callers_generator():
    class SampledLatentPrior(StubPrior):
        """A posterior-sample encoder, as a VAE prior's."""

        def encode_images(self, images, generator=None):
            noise = torch.randn(images.shape, generator=generator)
            return images * 2 - 1 + 0.1 * noise

    sds = SDS(SampledLatentPrior(), SDSConfig(guidance_scale=3.0))
    images = torch.rand(2, 3, 8, 8)
    cond = StubCondition(bias=torch.tensor([1.0, -1.0]))
    losses = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)  # the global generator's state must not matter
        out = sds.compute(images, cond, generator=torch.Generator().manual_seed(7))
        losses.append(out.loss)
    assert torch.equal(losses[0], losses[1])


def test_timestep_schedules():
    sched = TimestepSchedule()
    assert sched.bounds(T) == (20, 980)
    t = sched.sample(10000, T, generator=torch.Generator().manual_seed(0))
    assert t.min() >= 20 and t.max() <= 980 and t.dtype == torch.long
    assert t.min() <= 25 and t.max() >= 975  # covers the range
    assert TimestepSchedule(t_range=(0.02, 0.3)).bounds(T) == (20, 300)  # DD3G [20, 300]
    lin = TimestepSchedule(anneal="linear")
    assert lin.sample(2, T, step_ratio=0.25).tolist() == [750, 750]  # round((1 - r) T)
    assert lin.sample(1, T, step_ratio=0.0).item() == 980  # clipped to t_max
    assert lin.sample(1, T, step_ratio=1.0).item() == 20
    sq = TimestepSchedule(anneal="sqrt")
    assert sq.sample(1, T, step_ratio=0.25).item() == round(980 - 960 * math.sqrt(0.25))
    drop = TimestepSchedule(anneal="drop_max", anneal_t_max=0.5, anneal_start=0.2)
    early = drop.sample(5000, T, step_ratio=0.1, generator=torch.Generator().manual_seed(1))
    late = drop.sample(5000, T, step_ratio=0.5, generator=torch.Generator().manual_seed(1))
    assert early.max() > 900 and late.max() == 500
    with pytest.raises(ValidationError, match="step_ratio"):
        lin.sample(1, T)
    with pytest.raises(Exception, match="t_min"):
        TimestepSchedule(t_range=(0.5, 0.2))
    assert TimestepSchedule(t_range=(0.0, 1.0)).bounds(T) == (0, 999)


def test_presets():
    # DreamGaussian's Zero123 settings, spelled out now that its preset lives in its plugin.
    dg = SDSConfig(guidance_scale=5.0, timesteps={"t_range": (0.02, 0.98)})
    assert (
        dg.guidance_scale == 5.0 and dg.timesteps.bounds(T) == (20, 980) and dg.weighting == "sds"
    )
    assert SDSConfig(timesteps={"t_range": (0.02, 0.3)}).timesteps.bounds(T) == (20, 300)
    geco = VSDConfig(
        guidance_scale=4.0, student_guidance_scale=1.0, student_timesteps={"t_range": (0.02, 0.98)}
    )
    assert geco.guidance_scale == 4.0 and geco.student_guidance_scale == 1.0
    assert geco.student_timesteps.bounds(T) == (20, 980)
    pd = VSDConfig.preset("drop_max")
    assert pd.timesteps.anneal == "drop_max" and pd.student_timesteps.bounds(T) == (0, 999)
    assert SDSConfig().with_overrides(["timesteps.anneal=linear"]).timesteps.anneal == "linear"
    assert SDSConfig.preset("tiny").guidance_scale == 3.0


@pytest.mark.parametrize(
    ("config", "name"),
    [
        (SDSConfig, "dreamgaussian"),
        (SDSConfig, "dreamgaussian_sd"),
        (SDSConfig, "dd3g"),
        (VSDConfig, "geco"),
        (VSDConfig, "prolificdreamer"),
    ],
)
def test_paper_presets_live_in_their_plugins(config, name):
    with pytest.raises(GS3DError, match="unknown preset"):
        config.preset(name)


def test_vsd_equals_sds_minus_student_term():
    teacher, student = StubPrior(a=0.5), StubPrior(a=0.3, c=2e-3)
    g = torch.Generator().manual_seed(4)
    images = torch.rand(3, 3, 8, 8, generator=g)
    noise = torch.randn(3, 3, 8, 8, generator=g)
    t = torch.tensor([40, 400, 940])
    cond = StubCondition(bias=torch.tensor([0.2, 0.4, -0.3]))
    scfg = SDSConfig(guidance_scale=4.0, reduction="batch_mean")
    vcfg = VSDConfig(guidance_scale=4.0, student_guidance_scale=1.0, reduction="batch_mean")
    sds_out = SDS(teacher, scfg).compute(images, cond, t=t, noise=noise)
    x_img = images.clone().requires_grad_(True)
    vsd_out = VSD(teacher, student, vcfg).compute(x_img, cond, t=t, noise=noise)
    # Student term w(t) (eps_stu - eps), eps_stu computed by hand (CFG 1: conditional only).
    ab = sd_alphas()[t].view(-1, 1, 1, 1)
    x_t = ab.sqrt() * (images * 2 - 1) + (1 - ab).sqrt() * noise
    eps_stu = 0.3 * x_t + cond.bias.view(-1, 1, 1, 1) + 2e-3 * t.float().view(-1, 1, 1, 1)
    student_term = (1 - ab) * (eps_stu - noise)
    assert torch.allclose(vsd_out.grad, sds_out.grad - student_term, atol=1e-5)
    vsd_out.loss.backward()
    assert torch.allclose(x_img.grad, 2 * vsd_out.grad / 3, atol=1e-7)


def test_vsd_student_loss_targets_by_prediction_type():
    teacher = StubPrior()
    for pt in ("epsilon", "v_prediction", "sample"):
        student = StubPrior(pt, a=0.1)
        vsd = VSD(teacher, student, VSDConfig())
        x0 = torch.randn(2, 4, 4, 4)
        noise = torch.randn(2, 4, 4, 4)
        t = torch.tensor([10, 600])
        cond = StubCondition(bias=torch.tensor([0.1, 0.2]))
        got = vsd.student_loss(x0, cond, t=t, noise=noise)
        x_t = add_noise(x0, noise, t, sd_alphas())
        pred = 0.1 * x_t + cond.bias.view(-1, 1, 1, 1) + 1e-3 * t.float().view(-1, 1, 1, 1)
        target = {
            "epsilon": noise,
            "v_prediction": prediction_target(x0, noise, t, sd_alphas(), "v_prediction"),
            "sample": x0,
        }[pt]
        assert got.item() == pytest.approx(((pred - target) ** 2).mean().item(), rel=1e-5)


def test_vsd_terms_and_schedule_check():
    teacher, student = StubPrior(), StubPrior()
    vsd = VSD(teacher, student, VSDConfig(student_samples=2))
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    terms = vsd(
        images, StubCondition(bias=torch.ones(1)), generator=torch.Generator().manual_seed(0)
    )
    assert set(terms) == {"vsd", "student"}
    assert student.calls[-1] == 4  # two timesteps per sample
    terms["vsd"].backward()
    assert images.grad is not None

    class OtherSchedule(StubPrior):
        @property
        def alphas_cumprod(self):
            return torch.linspace(0.99, 0.01, T)

    with pytest.raises(ValidationError, match="noise schedule"):
        VSD(teacher, OtherSchedule())
