"""Unit tests of DD3G's components on tiny configurations."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from gs_core.errors import GS3DError, ValidationError, WeightsNotFoundError
from gs_core.testing import tiny_rgba_images
from gs_method_dd3g import DD3G, DD3GConfig
from gs_method_dd3g.cameras import (
    orbit_views,
    plucker_inputs,
    random_background,
    random_verification_views,
    random_view_sets,
)
from gs_method_dd3g.curriculum import objective_weights, verification_weight
from gs_method_dd3g.explicit_supervision import explicit_supervision
from gs_method_dd3g.model import gaussians_from_attributes
from gs_method_dd3g.progressive_decoding import weighted_levels
from gs_method_dd3g.quadruples import QuadrupleSet


def _tiny(**overrides) -> DD3G:
    torch.manual_seed(0)
    return DD3G(DD3GConfig.preset("tiny", **overrides))


def _inputs(model: DD3G, b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    az, el, noise = model.sample_inputs(b, g)
    rays = plucker_inputs(model.view_cameras(az, el), model.config.latent_size)
    rgb = model.input_rgb(tiny_rgba_images(b, 32))
    return rgb, noise, rays


def _fit_one_quadruple(m: DD3G, quadruples, steps: int = 12) -> None:
    """Explicit supervision on one quadruple: the MSE must fall by 30% in ``steps`` steps."""
    q = quadruples.batch(torch.tensor([0]))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    cams = m.view_cameras(q["azimuths"], q["elevations"])
    rays = plucker_inputs(cams, m.config.latent_size)
    losses = []
    for _ in range(steps):
        g = gaussians_from_attributes(m(m.input_rgb(q["images"]), q["noise"], rays))
        loss = explicit_supervision(g, cams, q["outputs"])["es_mse"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_paper_preset_counts():
    cfg = DD3GConfig.preset("paper")
    assert cfg.num_image_tokens() == 257  # DINOv2 at 224 px: CLS + 16 x 16
    assert cfg.num_tokens() == 307
    assert cfg.num_gaussians() == 157_184  # IV-A
    assert cfg.decoder.head_weights["position"] == [0.15, 0.7, 0.15]
    assert cfg.decoder.head_weights["color"] == [0.2, 0.8]
    assert cfg.lr == 1e-5 and cfg.train.clip_grad_value == 5.0 and cfg.render_resolution == 256
    assert cfg.iv_t_range == (20, 300) and cfg.eta == 0.4
    # Table II (b) at paper size: SI's one Gaussian per pixel at 128 px.
    assert DD3GConfig.preset("paper", generator="splatter").num_gaussians() == 128 * 128
    assert DD3GConfig.preset("small", generator="splatter").num_gaussians() == 64 * 64
    # Table II (a): TGS's 16,384 Gaussians (2,048 points x 8).
    assert DD3GConfig.preset("paper", generator="hybrid").num_gaussians() == 16_384


def test_head_config_rejects_bad_windows():
    with pytest.raises(GS3DError, match="adjacent"):
        DD3GConfig.preset("tiny", decoder={"head_blocks": {"position": [0, 2, 3]}})
    with pytest.raises(GS3DError, match="equal"):
        weights = {a: list(w) for a, w in DD3GConfig().decoder.head_weights.items()}
        weights["color"] = [1.0]
        DD3GConfig.preset("tiny", decoder={"head_weights": weights})


def test_shapes_and_ranges():
    m = _tiny().eval()
    rgb, noise, rays = _inputs(m)
    with torch.no_grad():
        out = m(rgb, noise, rays)
    n = m.config.num_gaussians()
    assert out["position"].shape == (2, n, 3)
    assert out["rotation"].shape == (2, n, 4)
    assert out["opacity"].shape == (2, n)
    assert len(out["levels"]) == m.config.decoder.depth
    assert out["log_scale"].min() > -9 and out["log_scale"].max() < -3
    torch.testing.assert_close(out["rotation"].norm(dim=-1), torch.ones(2, n))
    g = gaussians_from_attributes(out)
    g.validate(check_values=True)
    assert g.scales.max() < math.exp(-3)


def test_head_reads_weighted_adjacent_blocks():
    levels = [torch.full((1, 2, 3), float(i)) for i in range(4)]
    out = weighted_levels(levels, [1, 2, 3], [0.15, 0.7, 0.15])
    torch.testing.assert_close(out, torch.full((1, 2, 3), 0.15 * 1 + 0.7 * 2 + 0.15 * 3))
    # The position head sees only its blocks: changing a later block leaves it unchanged.
    m = _tiny().eval()
    rgb, noise, rays = _inputs(m, 1)
    with torch.no_grad():
        lv = m.generator.decoder.levels(m.generator.tokens(m.encoder(rgb), noise, rays))
        a = m.generator.decoder.decode(lv)
        lv2 = list(lv)
        lv2[3] = lv2[3] + 1.0  # tiny: position reads blocks 0-2, colour 2-3
        b = m.generator.decoder.decode(lv2)
    torch.testing.assert_close(a["position"], b["position"])
    assert not torch.allclose(a["color"], b["color"])


def test_noise_and_cameras_reach_the_output_only_with_pattern_extraction():
    for generator, changes in (("pepd", True), ("pd", False)):
        m = _tiny(generator=generator).eval()
        rgb, noise, rays = _inputs(m, 1)
        with torch.no_grad():
            a = m(rgb, noise, rays)["position"]
            b = m(rgb, torch.randn_like(noise), rays)["position"]
        assert (not torch.allclose(a, b)) == changes, generator


def test_curriculum_values():
    assert verification_weight(0, 100) == 0.0
    assert verification_weight(20, 100) == pytest.approx(0.5 * (math.exp(0.2) - 1))
    assert verification_weight(100, 100) == 0.4  # capped at eta
    knee = math.log(1 + 2 * 0.4)
    assert verification_weight(int(knee * 1000) - 1, 1000) < 0.4
    kw = {"eta": 0.4, "lambda_mse": 0.5, "lambda_lpips": 0.5, "lambda_opacity": 1.0}
    assert objective_weights("joint", 0, 10, iv_only_weight=1.0, **kw) == {
        "es_mse": 0.5,
        "es_lpips": 0.5,
        "opacity": 1.0,
    }
    assert set(objective_weights("joint", 5, 10, iv_only_weight=1.0, **kw)) == {
        "es_mse",
        "es_lpips",
        "iv",
        "opacity",
    }
    assert set(objective_weights("es", 5, 10, iv_only_weight=1.0, **kw)) == {
        "es_mse",
        "es_lpips",
        "opacity",
    }
    assert set(objective_weights("iv", 0, 10, iv_only_weight=1.0, **kw)) == {"iv", "opacity"}


def test_cameras_and_backgrounds():
    g = torch.Generator().manual_seed(0)
    az, el = random_view_sets(3, 4, (0.0, 0.0), g)
    d = torch.remainder(az[:, 1:] - az[:, :-1], 360.0)
    torch.testing.assert_close(d, torch.full_like(d, 90.0))
    assert (el == 0).all()
    az, el = random_verification_views(64, 4, (-180.0, 180.0), (-5.0, 5.0), g)
    assert az.min() >= -180 and az.max() <= 180 and el.abs().max() <= 5
    bg = random_background((10000, 3), g)
    assert bg.min() >= 0 and bg.max() <= 1
    # E[1 - (1 - zeta)^3] = 3/4 (Eq. 8 favours light backgrounds)
    assert abs(bg.mean().item() - 0.75) < 0.02
    cams = orbit_views(az[:2], el[:2], 1.5, 49.1, 16)
    assert plucker_inputs(cams, 8).shape == (2, 4, 6, 8, 8)


def test_training_cameras_come_from_host_angles(tiny_quadruples):
    index = torch.tensor([1, 0])
    az, el = tiny_quadruples.host_angles(index)
    assert az.device.type == "cpu" and az.dtype == torch.float32
    q = tiny_quadruples.batch(index)
    torch.testing.assert_close(az, q["azimuths"].cpu())
    torch.testing.assert_close(el, q["elevations"].cpu())
    m = _tiny()
    a = m.view_cameras(az, el)
    b = m.view_cameras(q["azimuths"], q["elevations"])
    torch.testing.assert_close(a.viewmats, b.viewmats)


@pytest.mark.gpu
def test_training_cameras_need_no_synchronisation(tiny_quadruples):
    quads = tiny_quadruples.to("cuda")
    index = torch.tensor([0, 1])
    quads.host_angles(index)  # the one copy back, kept
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        az, el = quads.host_angles(index)
        cams = orbit_views(az, el, 1.5, 49.1, 16, device="cuda")
        vaz, vel = random_verification_views(2, 4, (-180.0, 180.0), (-5.0, 5.0), None, "cpu")
        orbit_views(vaz, vel, 1.5, 49.1, 16, device="cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert cams.viewmats.is_cuda and cams.viewmats.shape == (2, 4, 4, 4)


@pytest.mark.gpu
@pytest.mark.parametrize("generator", ["pepd", "splatter"])
def test_graphed_generate_matches_eager_on_cuda(generator):
    """The CUDA graphs of ``generate`` (encoder, generator) give eager's Gaussians, SH degree 1
    from Splatter Image's head included, and gsplat renders them."""
    from gs_core.rendering import render

    m = _tiny(generator=generator).eval().to("cuda")
    images = tiny_rgba_images(2, 32).cuda()
    eager = m.generate(images, seed=5, cuda_graph=False).gaussians
    with warnings.catch_warnings():  # an empty graph (nothing recorded) only warns
        warnings.filterwarnings("error", message=".*CUDA Graph is empty")
        for _ in range(2):  # records, then replays
            graphed = m.generate(images, seed=5, cuda_graph=True).gaussians
    assert graphed.sh_degree == eager.sh_degree == (1 if generator == "splatter" else 0)
    for name in ("means", "quats", "scales", "opacities", "sh"):
        torch.testing.assert_close(getattr(graphed, name), getattr(eager, name))
    cams = m.view_cameras(torch.zeros(2, 1), torch.zeros(2, 1))
    out = render(graphed, cams, background=1.0, backend="gsplat")
    want = render(graphed, cams, background=1.0, backend="torch")
    # The two backends differ at edges (tile culling, float order): compare on average.
    assert (out.rgb - want.rgb).abs().mean() < 1e-2


def test_seed_reproducible_and_fresh():
    m = _tiny().eval()
    x = tiny_rgba_images(1, 32)
    a = m.generate(x, seed=3).gaussians.means
    b = m.generate(x, seed=3).gaussians.means
    c = m.generate(x, seed=4).gaussians.means
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_a_half_precision_model_generates_float32_gaussians():
    # The paper-size benchmark runs in bf16: generate must feed a cast model its own dtype
    # (noise, rays and the image) and return float32 Gaussians for the renderers.
    m = _tiny().eval()
    x = tiny_rgba_images(1, 32)
    ref = m.generate(x, seed=3).gaussians
    half = m.to(dtype=torch.bfloat16).generate(x, seed=3).gaussians
    assert half.means.dtype == torch.float32 and half.sh.dtype == torch.float32
    assert half.means.shape == ref.means.shape
    assert (half.means - ref.means).abs().max() < 0.02  # bf16 round-off (0.003 of 0.18 at most)


def test_explicit_supervision_decreases_on_fixed_quadruple(tiny_quadruples):
    _fit_one_quadruple(_tiny(), tiny_quadruples)


def test_implicit_verification_gradient_reaches_generator(tiny_teacher, tiny_quadruples):
    from gs_method_dd3g.implicit_verification import implicit_verification, verification_sds

    m = _tiny()
    q = tiny_quadruples.batch(torch.tensor([0, 1]))
    cams = m.view_cameras(q["azimuths"], q["elevations"], m.config.latent_size)
    g = gaussians_from_attributes(
        m(m.input_rgb(q["images"]), q["noise"], plucker_inputs(cams, m.config.latent_size))
    )
    sds = verification_sds(tiny_teacher, m.config)
    lo, hi = sds.config.timesteps.bounds(tiny_teacher.num_train_timesteps)
    assert (lo, hi) == (20, 300)
    terms = implicit_verification(
        g, q["images"], tiny_teacher, sds, m.config, torch.Generator().manual_seed(0)
    )
    terms["iv"].backward()
    head = m.generator.decoder.heads["color"].fc2.weight.grad
    pe = m.generator.pattern.conv_in.weight.grad
    assert head is not None and head.abs().sum() > 0
    assert pe is not None and pe.abs().sum() > 0


def test_implicit_verification_is_normalised_per_latent_entry(tiny_teacher, tiny_quadruples):
    """``iv_reduction='mean'`` (the default) is ``'batch_mean'`` (per rendered view) divided by
    one view's latent entries (channels x h x w): the same draws, the gradient scaled exactly."""
    from gs_method_dd3g.implicit_verification import implicit_verification, verification_sds

    grads = {}
    for reduction in ("mean", "batch_mean"):
        torch.manual_seed(0)
        m = _tiny(iv_reduction=reduction)
        q = tiny_quadruples.batch(torch.tensor([0, 1]))
        cams = m.view_cameras(q["azimuths"], q["elevations"], m.config.latent_size)
        g = gaussians_from_attributes(
            m(m.input_rgb(q["images"]), q["noise"], plucker_inputs(cams, m.config.latent_size))
        )
        sds = verification_sds(tiny_teacher, m.config)
        assert sds.config.reduction == reduction
        implicit_verification(
            g, q["images"], tiny_teacher, sds, m.config, torch.Generator().manual_seed(0)
        )["iv"].backward()
        grads[reduction] = m.generator.decoder.heads["color"].fc2.weight.grad.clone()
    c = m.config
    entries = c.latent_channels * c.latent_size * c.latent_size
    assert DD3GConfig().iv_reduction == "mean"
    assert grads["mean"].abs().sum() > 0
    torch.testing.assert_close(grads["batch_mean"], grads["mean"] * entries, rtol=1e-4, atol=1e-9)


def test_the_iv_ablation_anneals_t_after_prolificdreamer(tiny_teacher):
    """V-C: IV alone with t in [20, 300] does not converge; the ablation's t follows
    ProlificDreamer (U[20, 980], then U[20, 500] after 20% of training). The joint objective
    keeps IV-A's [20, 300]."""
    from gs_method_dd3g.implicit_verification import verification_timesteps

    n = tiny_teacher.num_train_timesteps
    joint = verification_timesteps(_tiny(objective="joint").config, n)
    assert joint.anneal == "none" and joint.bounds(n) == (20, 300)
    kept = verification_timesteps(_tiny(objective="iv", iv_only_schedule="verification").config, n)
    assert kept.anneal == "none" and kept.bounds(n) == (20, 300)
    iv = verification_timesteps(_tiny(objective="iv").config, n)
    gen = torch.Generator().manual_seed(0)
    early = iv.sample(4096, n, step_ratio=0.1, generator=gen)
    late = iv.sample(4096, n, step_ratio=0.5, generator=gen)
    assert early.min() >= 20 and early.max() > 900
    assert late.min() >= 20 and 450 < late.max() <= 500


def test_verifier_references_encode_once_and_give_the_same_loss(
    tiny_teacher, tiny_quadruples, monkeypatch
):
    from gs_method_dd3g.implicit_verification import implicit_verification, verification_sds
    from gs_method_dd3g.verifier_references import VerifierReferences

    m = _tiny()
    index = torch.tensor([2, 0])
    q = tiny_quadruples.batch(index)
    cams = m.view_cameras(*tiny_quadruples.host_angles(index), m.config.latent_size)
    with torch.no_grad():
        g = gaussians_from_attributes(
            m(m.input_rgb(q["images"]), q["noise"], plucker_inputs(cams, m.config.latent_size))
        )
    sds = verification_sds(tiny_teacher, m.config)
    refs = VerifierReferences(tiny_teacher, tiny_quadruples.images, chunk=3)
    assert len(refs) == len(tiny_quadruples)

    def loss(references, global_seed):
        torch.manual_seed(
            global_seed
        )  # every draw comes from gen: the global state must not matter
        gen = torch.Generator().manual_seed(5)
        return implicit_verification(
            g, q["images"], tiny_teacher, sds, m.config, gen, references=references
        )["iv"]

    expected = loss(None, 0)
    calls = []
    for owner, name in ((tiny_teacher, "_embed_text"), (tiny_teacher.image_encoder, "forward")):
        original = getattr(owner, name)
        monkeypatch.setattr(
            owner, name, lambda *a, o=original, n=name, **k: calls.append(n) or o(*a, **k)
        )
    cached = loss(lambda gen: refs.reference(index, gen), 1)
    assert calls == []  # no text or image encoding per step
    torch.testing.assert_close(cached, expected, rtol=1e-5, atol=1e-6)
    # the latent is a fresh posterior sample each call, as encode_reference draws one
    a = refs.reference(index, torch.Generator().manual_seed(1)).input_latents
    b = refs.reference(index, torch.Generator().manual_seed(2)).input_latents
    assert not torch.equal(a, b)
    with pytest.raises(ValidationError, match="uint8 RGBA"):
        VerifierReferences(tiny_teacher, tiny_quadruples.images.float())


def test_verifier_references_encode_an_image_once_for_all_its_quadruples(tiny_teacher):
    from gs_method_dd3g.verifier_references import VerifierReferences

    images = (tiny_rgba_images(2, 32) * 255).round().to(torch.uint8)
    rows = images.repeat_interleave(3, dim=0)  # generate_quadruples(per_image=3)'s inputs
    each = VerifierReferences(tiny_teacher, rows)
    shared = VerifierReferences(tiny_teacher, rows, rows_per_image=3)
    assert len(shared) == len(each) == 6 and shared.image_tokens.shape[0] == 2
    index = torch.tensor([5, 0, 4])
    a = each.reference(index, torch.Generator().manual_seed(3))
    b = shared.reference(index, torch.Generator().manual_seed(3))
    torch.testing.assert_close(b.image_tokens, a.image_tokens)
    torch.testing.assert_close(b.input_latents, a.input_latents)
    with pytest.raises(ValidationError, match="consecutive rows"):
        VerifierReferences(tiny_teacher, images.repeat(3, 1, 1, 1), rows_per_image=3)


@pytest.mark.parametrize("objective", ["joint", "es", "iv"])
def test_training_module_runs_each_objective(objective, tiny_teacher, tiny_quadruples, tmp_path):
    from gs_core.training import Trainer

    m = _tiny(objective=objective, train={"max_steps": 3})
    mod = m.training_module(quadruples=tiny_quadruples, teacher=tiny_teacher)
    res = Trainer(mod, tmp_path / "run").fit()
    assert res.step == 3
    assert "loss/opacity" in res.metrics
    assert ("loss/es_mse" in res.metrics) == (objective != "iv")


def test_training_needs_teacher_for_verification(tiny_quadruples):
    with pytest.raises(GS3DError, match="teacher"):
        _tiny(objective="joint").training_module(quadruples=tiny_quadruples)


def test_quadruples_roundtrip_and_errors(tiny_quadruples, tmp_path):
    path = tiny_quadruples.save(tmp_path)
    back = QuadrupleSet.load(tmp_path)
    torch.testing.assert_close(back.noise, tiny_quadruples.noise)
    assert back.meta["steps"] == 4 and back.meta["sampler"] == "ddim"
    path.write_bytes(b"garbage")
    with pytest.raises(GS3DError, match="safetensors"):
        QuadrupleSet.load(tmp_path)
    with pytest.raises(ValidationError, match="noise"):
        _tiny(latent_size=16).training_module(quadruples=tiny_quadruples, teacher=None)


def test_quadruples_are_deterministic(tiny_teacher):
    from gs_method_dd3g.quadruples import generate_quadruples

    x = tiny_rgba_images(3, 32)
    seen = []
    a = generate_quadruples(
        tiny_teacher,
        x,
        steps=3,
        generator=torch.Generator().manual_seed(1),
        batch_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    b = generate_quadruples(
        tiny_teacher, x, steps=3, generator=torch.Generator().manual_seed(1), batch_size=2
    )
    assert seen == [(2, 3), (3, 3)]  # after each batch
    assert torch.equal(a.outputs, b.outputs) and torch.equal(a.noise, b.noise)
    assert a.meta["per_image"] == 1


def test_several_quadruples_per_image_differ_in_noise_and_outputs(tiny_teacher):
    """IV-A's ~23 trajectories per image: rows of one image share II, not N, C or OI."""
    from gs_method_dd3g.quadruples import generate_quadruples

    x = tiny_rgba_images(2, 32)
    q = generate_quadruples(
        tiny_teacher, x, steps=2, generator=torch.Generator().manual_seed(1), per_image=3
    )
    assert len(q) == 6 and q.meta["per_image"] == 3
    for i in range(2):
        rows = q.images[3 * i : 3 * i + 3]
        assert torch.equal(rows[0], rows[1]) and torch.equal(rows[0], rows[2])
        assert not torch.equal(q.noise[3 * i], q.noise[3 * i + 1])
        assert not torch.equal(q.outputs[3 * i], q.outputs[3 * i + 1])
    assert not torch.equal(q.images[0], q.images[3])
    with pytest.raises(ValidationError, match="per_image"):
        generate_quadruples(tiny_teacher, x, steps=2, per_image=0)


def test_quadruples_at_each_images_elevation(tiny_teacher):
    """A student image seen from elevation e gets C at e (the teacher's rings share one
    elevation); the noise and azimuths are the draws made without it."""
    from gs_method_dd3g.quadruples import generate_quadruples

    x = tiny_rgba_images(2, 32)
    kw = dict(steps=2, per_image=2, batch_size=4)
    plain = generate_quadruples(tiny_teacher, x, generator=torch.Generator().manual_seed(3), **kw)
    el = torch.tensor([-12.5, 20.0])
    q = generate_quadruples(
        tiny_teacher, x, generator=torch.Generator().manual_seed(3), input_elevations=el, **kw
    )
    assert torch.equal(q.elevations, torch.tensor([-12.5, -12.5, 20.0, 20.0])[:, None].expand(4, 4))
    assert torch.equal(plain.elevations, torch.zeros(4, 4))
    assert torch.equal(q.noise, plain.noise) and torch.equal(q.azimuths, plain.azimuths)
    assert not torch.equal(q.outputs, plain.outputs)  # the teacher was asked for other views
    with pytest.raises(ValidationError, match="input_elevations"):
        generate_quadruples(tiny_teacher, x, steps=2, input_elevations=torch.zeros(3))


def test_dinov2_encoder_offline_error(offline_hub):
    cfg = DD3GConfig.preset(
        "tiny",
        encoder={"kind": "dinov2", "variant": "small", "image_size": 28, "pretrained": "official"},
    )
    m = DD3G(cfg)
    assert m.config.num_image_tokens() == 5
    with pytest.raises(WeightsNotFoundError, match="dinov2"):
        m.encoder.ensure_weights()
    m.encoder.dino.pending_weights = None  # random weights (tests only): the path runs end to end
    out = m.eval().generate(tiny_rgba_images(1, 32), seed=0)
    assert out.gaussians.num_gaussians == cfg.num_gaussians()


@pytest.mark.parametrize(
    "generator,head,count",
    [
        ("splatter", "splatter_image", 16 * 16),
        ("splatter", "lgm", 16 * 16),
        ("splatter", "splatter_image+ddpmpp", 16 * 16),
        ("hybrid", "", 8 * 8),
    ],
)
def test_table2_baselines_see_the_image_alone(generator, head, count):
    # Table II (a) hybrid and (b) splatter: the image decides the output; noise and cameras
    # do not reach it (generators built for 3D data have no input for them).
    head, _, backbone = head.partition("+")
    extra = {"splatter": {"head": head, "backbone": backbone or "lgm"}} if head else {}
    m = _tiny(generator=generator, **extra).eval()
    assert m.config.num_gaussians() == count
    if generator == "splatter":  # the image goes to the network itself
        assert not any(n.startswith("encoder.") for n, _ in m.named_parameters())
    x = tiny_rgba_images(2, 32)
    a = m.generate(x, seed=0).gaussians
    b = m.generate(x, seed=1).gaussians  # other C and N
    assert a.means.shape == (2, count, 3) and a.opacities.shape == (2, count)
    torch.testing.assert_close(a.means, b.means)
    # LGM's positions are clamped to the unit cube; SI's hang on rays at depths 0.75-2.25.
    assert a.means.abs().max() <= (2.5 if head == "splatter_image" else 1.0)
    assert bool((a.scales > 0).all())
    torch.testing.assert_close(a.quats.norm(dim=-1), torch.ones(2, count))
    assert not torch.allclose(a.means[0], a.means[1])  # the two images differ


@pytest.mark.parametrize("backbone", ["lgm", "ddpmpp"])
def test_splatter_image_hangs_each_gaussian_on_its_pixels_ray_of_the_fixed_camera(backbone):
    """Table II (b)'s head is Splatter Image's: at the start (offsets near zero, uniform opacity
    and scale) each Gaussian lies on the fixed input camera's ray through its own output pixel,
    at a depth inside (znear, zfar); rotations
    predicted in the camera frame come out turned by the camera's rotation."""
    from gs_core.rendering.projection import quat_to_rotmat
    from gs_method_dd3g.cameras import orbit_views

    m = _tiny(generator="splatter", splatter={"backbone": backbone}).eval()
    gen = m.generator
    with torch.no_grad():  # SI's start for white-background objects: uniform but the depth
        start = gen(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    sigmoid_bias = torch.sigmoid(torch.tensor(m.config.splatter.opacity_init_bias))
    torch.testing.assert_close(start["opacity"], sigmoid_bias.expand(2, 256), atol=1e-2, rtol=0)
    scales = start["log_scale"].exp()
    torch.testing.assert_close(scales, torch.full_like(scales, 0.02), rtol=0.05, atol=0)
    with torch.no_grad():  # rotation channels 8..11 say "identity" in the camera frame
        gen.head.weight[8:12].zero_()
        gen.head.bias[8:12].copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        out = gen(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    side = 16  # the tiny preset: 16 px in, 16 x 16 Gaussians out
    cams = orbit_views(
        torch.zeros(1, 1), torch.zeros(1, 1), m.config.camera_radius, m.config.fov_deg, side
    )
    view = cams.viewmats[0, 0]
    local = out["position"] @ view[:3, :3].T + view[:3, 3]  # camera frame, [2, N, 3]
    near, far = m.config.splatter.depth_range
    assert bool((local[..., 2] > near).all()) and bool((local[..., 2] < far).all())
    K = cams.Ks[0, 0]
    px = local[..., :2] / local[..., 2:] * K.diagonal()[:2] + K[:2, 2]
    v, u = torch.meshgrid(torch.arange(side) + 0.5, torch.arange(side) + 0.5, indexing="ij")
    centres = torch.stack([u, v], -1).reshape(-1, 2)
    torch.testing.assert_close(px, centres.expand_as(px), atol=1e-3, rtol=0)
    assert local[..., 2].std() > 1e-3  # depths are predicted, not one constant
    c2w = torch.linalg.inv(view)[:3, :3]
    turned = quat_to_rotmat(out["rotation"].reshape(-1, 4))
    torch.testing.assert_close(turned, c2w.expand_as(turned), atol=1e-5, rtol=0)
    # A wrong fixed pose moves every Gaussian: SI's geometry depends on the camera.
    low = _tiny(generator="splatter", camera_radius=2.0, splatter={"backbone": backbone})
    low.generator.load_state_dict(gen.state_dict())
    with torch.no_grad():
        moved = low.generator(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    assert (moved["position"] - out["position"]).norm(dim=-1).min() > 0.1
    # Under bf16 autocast the U-Net runs in bf16 and the geometry in float32: the pixel
    # centres hold to the same tolerance.
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gen(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    assert all(v.dtype == torch.float32 for v in mixed.values())
    local = mixed["position"] @ view[:3, :3].T + view[:3, 3]
    px = local[..., :2] / local[..., 2:] * K.diagonal()[:2] + K[:2, 2]
    torch.testing.assert_close(px, centres.expand_as(px), atol=1e-3, rtol=0)


def test_splatter_images_backbone_is_the_ddpmpp_unet_it_configures():
    """SI's U-Net (EDM's DDPM++ as SI builds it): at SI's ShapeNet setting (128 px, base 128,
    four blocks per level, attention at 16 px) the output keeps the input's size, attention
    sits in the four 16 px encoder blocks, the bottom block and the last 16 px decoder block,
    every residual branch starts near zero, and the input reaches the output."""
    from gs_method_dd3g.config import DDPMppConfig
    from gs_method_dd3g.ddpmpp_unet import DDPMppUNet

    net = DDPMppUNet(3, 15, 128, DDPMppConfig())
    blocks = [*net.encoder, *net.decoder]
    assert len(net.encoder) == 3 + 4 * 4  # three downsampling blocks, four blocks per level
    assert len(net.decoder) == 2 + 3 + 4 * 5  # the bottom pair, three up, five per level
    assert sum(b.attention for b in net.encoder) == 4
    assert [i for i, b in enumerate(net.decoder) if b.attention] == [0, 6]
    assert {b.res.conv2.weight.abs().max().item() < 1e-3 for b in blocks} == {True}
    assert sum(p.numel() for p in net.parameters()) == 56_367_759
    tiny = DDPMppUNet(3, 15, 16, DDPMppConfig(model_channels=8, channel_mult=[1, 2], num_blocks=1))
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    y = tiny(x)
    assert y.shape == (2, 15, 16, 16)
    y[0, :, 3, 5].sum().backward()
    assert x.grad[0].abs().sum() > 0 and x.grad[1].abs().sum() == 0  # per image
    with pytest.raises(ValueError, match="norm groups"):
        DDPMppUNet(3, 15, 16, DDPMppConfig(model_channels=48, num_blocks=1))
    with pytest.raises(GS3DError, match="backbone 'ddpmpp' is Splatter Image's"):
        DD3GConfig.preset("tiny", splatter={"backbone": "ddpmpp", "head": "lgm"})
    three_levels = {"backbone": "ddpmpp", "input_size": 18, "ddpmpp": {"channel_mult": [1, 2, 2]}}
    with pytest.raises(GS3DError, match=r"input_size 18 is not divisible by 2\^2"):
        DD3GConfig.preset("tiny", splatter=three_levels)
    small = DD3GConfig.preset("small", generator="splatter", splatter={"backbone": "ddpmpp"})
    assert small.num_gaussians() == 64 * 64  # one per input pixel, as the LGM backbone's


def test_a_splatter_checkpoint_saved_before_the_head_existed_loads_as_lgms(tmp_path):
    """Checkpoints of sessions up to 52 hold the splatter section without `head`: they load
    as LGM's head, the only one then; a section naming its head keeps it."""
    import json

    m = _tiny(generator="splatter", splatter={"head": "lgm"})
    m.save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    for key in (
        "head",
        "depth_range",
        "offset_init_gain",
        "opacity_init_gain",
        "opacity_init_bias",
        "scale_init",
        "scale_init_gain",
        "color_init_gain",
        "sh_degree",
    ):
        cfg["splatter"].pop(key)
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    back = DD3G.from_pretrained(tmp_path / "old")
    assert back.config.splatter.head == "lgm"
    torch.testing.assert_close(back.state_dict(), m.state_dict())
    assert DD3GConfig.preset("tiny", generator="splatter").splatter.head == "splatter_image"
    si = DD3GConfig.preset("tiny", splatter={"head": "splatter_image", "depth_range": (1.0, 2.0)})
    assert si.splatter.head == "splatter_image"
    with pytest.raises(GS3DError, match="splatter.depth_range.*znear < zfar"):
        DD3GConfig.preset("tiny", splatter={"depth_range": (2.0, 1.0)})


def test_sh1_turn_keeps_each_colour_with_its_direction():
    """Band-1 coefficients turned by ``sh1_turn(R)`` show along ``R d`` what they showed along
    ``d``, for any rotation (the renderer's SH basis, gs_core.rendering.sh)."""
    from gs_core.rendering.sh import eval_sh
    from gs_method_dd3g.splatter_baseline import sh1_turn

    gen = torch.Generator().manual_seed(0)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    rot = q * torch.sign(torch.diagonal(r))
    rot = rot if torch.det(rot) > 0 else -rot  # a proper rotation, not a mirror
    coeffs = torch.randn(4, 3, generator=gen, dtype=torch.float64)  # [DC + band 1, RGB]
    dirs = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    turned = torch.cat([coeffs[:1], sh1_turn(rot) @ coeffs[1:]])
    torch.testing.assert_close(eval_sh(1, dirs @ rot.T, turned), eval_sh(1, dirs, coeffs))
    # Turning by the transpose (the likely slip) does not: the test can tell them apart.
    wrong = torch.cat([coeffs[:1], sh1_turn(rot.T) @ coeffs[1:]])
    assert (eval_sh(1, dirs @ rot.T, wrong) - eval_sh(1, dirs, coeffs)).abs().max() > 0.1


def test_splatter_images_colours_have_sh_degree_1_from_the_camera_frame():
    """SI's configs predict SH degree 1: nine more head channels starting at zero (weights and
    bias), coefficients predicted in the fixed camera's frame and turned to the world's, and
    Gaussians of degree 1. ``sh_degree=0`` is the DC alone, the LGM head has none, and a saved
    SI section from before the field (sessions 53-54) loads as the DC alone."""
    import json

    from gs_core.rendering.sh import eval_sh
    from gs_method_dd3g.cameras import orbit_views

    m = _tiny(generator="splatter").eval()
    gen = m.generator
    assert m.config.splatter.colour_sh_degree() == 1 and gen.head.out_channels == 24
    assert gen.head.weight[15:].abs().max() == 0 and gen.head.bias[15:].abs().max() == 0
    rgb = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert gen(rgb)["sh_rest"].abs().max() == 0  # the start: view-independent colours
        cam_coeffs = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
        gen.head.bias[15:].copy_(cam_coeffs.flatten())  # [band-1 coefficient, RGB]
        out = gen(rgb)
    assert out["sh_rest"].shape == (2, 256, 3, 3)
    cams = orbit_views(
        torch.zeros(1, 1), torch.zeros(1, 1), m.config.camera_radius, m.config.fov_deg, 16
    )
    c2w = torch.linalg.inv(cams.viewmats[0, 0])[:3, :3]
    dirs = torch.randn(32, 3, generator=torch.Generator().manual_seed(2))
    dc = torch.zeros(1, 3)
    world = eval_sh(1, dirs, torch.cat([dc, out["sh_rest"][0, 0]]))
    seen_in_camera = eval_sh(1, dirs @ c2w, torch.cat([dc, cam_coeffs]))  # rows: R^T d
    torch.testing.assert_close(world, seen_in_camera, atol=1e-5, rtol=0)
    g = gaussians_from_attributes(out)
    assert g.sh_degree == 1 and g.sh.shape == (2, 256, 4, 3)
    torch.testing.assert_close(g.sh[..., 1:, :], out["sh_rest"])
    dc_only = _tiny(generator="splatter", splatter={"sh_degree": 0})
    assert dc_only.generator.head.out_channels == 15
    assert "sh_rest" not in dc_only.generator(rgb)
    with pytest.raises(GS3DError, match="splatter.*expected sh_degree 0"):
        DD3GConfig.preset("tiny", splatter={"head": "lgm", "sh_degree": 1})
    assert DD3GConfig.preset("tiny", splatter={"head": "lgm"}).splatter.colour_sh_degree() == 0
    cfg = json.loads(dc_only.config.model_dump_json())
    for key in ("sh_degree", "backbone", "ddpmpp"):  # a section saved in session 53
        cfg["splatter"].pop(key)
    assert DD3GConfig.model_validate(cfg).splatter.colour_sh_degree() == 0


@pytest.mark.parametrize("generator", ["splatter", "splatter+ddpmpp", "hybrid"])
def test_table2_baselines_learn_a_quadruple_and_train_through_the_engine(
    generator, tiny_quadruples, tmp_path
):
    from gs_core.training import Trainer

    generator, _, backbone = generator.partition("+")
    extra = {"splatter": {"backbone": backbone}} if backbone else {}
    m = _tiny(generator=generator, **extra)
    _fit_one_quadruple(m, tiny_quadruples)
    if generator == "hybrid":  # both branches learn
        assert m.generator.points.queries.grad.abs().sum() > 0
        assert m.generator.planes.queries.grad.abs().sum() > 0

    # bf16 as the small preset trains (Splatter Image's geometry leaves autocast in float32)
    train = {"max_steps": 2, "precision": "bf16"}
    m = _tiny(generator=generator, objective="es", train=train, **extra)
    res = Trainer(m.training_module(quadruples=tiny_quadruples), tmp_path / "run").fit()
    assert res.step == 2 and "loss/es_mse" in res.metrics


def test_small_preset_ema_leaves_the_initialisation_behind():
    """The small preset's EMA warms up: after 250 updates of constant live weights the shadow
    holds almost none of the random initialisation (without warm-up it held 0.999^250 = 78%)."""
    from gs_core.training.ema import EMA

    train = DD3GConfig.preset("small").train
    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA({"p": p}, train.ema_decay, train.ema_warmup)
    with torch.no_grad():
        p.fill_(1.0)  # the trained weights; the shadow starts at the initialisation, 0
    for _ in range(250):
        ema.update()
    assert float(ema.shadow[0].mean()) > 0.95


def test_explicit_supervision_runs_whatever_the_verifier_settings(
    tiny_teacher, tiny_quadruples, tmp_path
):
    """summarise_runs.py joins ES runs of leases whose verifier settings differ: that holds
    only while objective=es never reads them (weights equal after training either way), while
    a joint run does (so the comparison can fail)."""
    from gs_core.training import Trainer

    other = {"iv_random_background": False, "iv_guidance_scale": 1.0, "iv_t_range": (50, 60)}
    for objective, equal in (("es", True), ("joint", False)):
        states = []
        for i, iv in enumerate([{}, other]):
            m = _tiny(objective=objective, train={"max_steps": 3}, **iv)
            mod = m.training_module(quadruples=tiny_quadruples, teacher=tiny_teacher)
            Trainer(mod, tmp_path / f"{objective}{i}").fit()
            states.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        same = all(torch.equal(states[0][k], states[1][k]) for k in states[0])
        assert same == equal, objective


def test_the_small_preset_verifies_on_white_without_guidance_and_paper_keeps_eq8():
    small, paper = DD3GConfig.preset("small"), DD3GConfig.preset("paper")
    assert (small.iv_random_background, small.iv_guidance_scale) == (False, 1.0)
    assert (paper.iv_random_background, paper.iv_guidance_scale) == (True, 5.0)
