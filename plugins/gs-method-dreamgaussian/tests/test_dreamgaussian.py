"""DreamGaussian's pieces against the official code's numbers, the two stages on the ``tiny``
preset (random tiny Zero123, CPU), the ablation switches, bad inputs and the CLI."""

from __future__ import annotations

import math

import pytest
import torch

from gs_core.errors import GS3DError, ValidationError, WeightsNotFoundError
from gs_core.testing.conformance import tiny_rgba_images
from gs_method_dreamgaussian import DreamGaussianConfig
from gs_method_dreamgaussian.cameras import (
    bake_cameras,
    elevation_offset_bounds,
    novel_resolution,
    reference_camera,
    sample_novel_views,
)
from gs_method_dreamgaussian.config import CameraConfig, PriorConfig, Stage1Config
from gs_method_dreamgaussian.schedules import position_lr, refine_strength, timestep_schedule


def tiny(**overrides) -> DreamGaussianConfig:
    return DreamGaussianConfig.preset("tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_run():
    """One full tiny run (both stages, profiled), shared by the tests that read it."""
    from gs_method_dreamgaussian import DreamGaussian

    model = DreamGaussian(tiny())
    with pytest.warns(Warning, match="random weights"), torch.no_grad():
        return model.generate(tiny_rgba_images(1, 32), seed=3, profile=True)


# ---------------------------------------------------------------------------- schedules
def test_position_lr_follows_the_official_schedule():
    cfg = Stage1Config()
    # lr x spatial_lr_scale 10, log-linear over 500 steps: 1e-2 -> 2e-4.
    assert position_lr(cfg, 1) == pytest.approx(1e-2 * 0.02 ** (1 / 500), rel=1e-9)
    assert position_lr(cfg, 250) == pytest.approx(math.sqrt(1e-2 * 2e-4), rel=1e-9)
    assert position_lr(cfg, 500) == pytest.approx(2e-4, rel=1e-9)
    assert position_lr(cfg, 900) == pytest.approx(2e-4, rel=1e-9)


def test_timestep_annealing_values():
    sched = timestep_schedule(Stage1Config())
    t = {r: int(sched.sample(1, 1000, r)[0]) for r in (0.0, 0.002, 0.25, 0.5, 0.999, 1.0)}
    # round((1 - r) * 1000) clipped to [20, 980]
    assert t == {0.0: 980, 0.002: 980, 0.25: 750, 0.5: 500, 0.999: 20, 1.0: 20}
    uniform = timestep_schedule(Stage1Config(anneal_timestep=False))
    g = torch.Generator().manual_seed(0)
    u = uniform.sample(4000, 1000, 1.0, generator=g)
    assert int(u.min()) >= 20 and int(u.max()) <= 980 and u.unique().numel() > 500


def test_resolution_and_strength_schedules():
    cfg = Stage1Config()
    assert [novel_resolution(cfg, r) for r in (0.002, 0.299, 0.3, 0.599, 0.6, 1.0)] == [
        128, 128, 256, 256, 512, 512,
    ]  # fmt: skip
    s2 = DreamGaussianConfig().stage2
    assert refine_strength(s2, 0.0) == pytest.approx(0.8)
    assert refine_strength(s2, 1.0) == pytest.approx(0.95)


# ---------------------------------------------------------------------------- cameras
@pytest.mark.parametrize("input_elevation", [0.0, 30.0, -60.0, 75.0])
def test_novel_cameras_as_official_in_gs3d_sign(input_elevation):
    cfg = CameraConfig(input_elevation_deg=input_elevation)
    lo, hi = elevation_offset_bounds(cfg)
    e_dg = -input_elevation  # DreamGaussian's opt.elevation
    assert (lo, hi) == (max(min(-30, -30 - e_dg), -80 - e_dg), min(max(30, 30 - e_dg), 80 - e_dg))
    v = sample_novel_views(cfg, 3000, torch.Generator().manual_seed(0))
    ver = -v.d_elevation  # the official integer offset, DreamGaussian's sign
    assert torch.equal(ver, ver.round()) and int(ver.min()) == lo and int(ver.max()) == hi - 1
    absolute_dg = e_dg + ver
    assert torch.equal(v.elevation, -absolute_dg)  # gs3d's elevation is DreamGaussian's negated
    assert float(v.elevation.abs().max()) <= 80
    if abs(input_elevation) <= 50:  # the sampled range always covers [-30, 30] ...
        assert float(v.elevation.min()) <= -29 and float(v.elevation.max()) >= 29
    assert int(v.azimuth.min()) == -180 and int(v.azimuth.max()) == 179
    assert torch.equal(v.d_azimuth, v.azimuth)
    # ... and a positive gs3d elevation puts the camera above the object.
    cams = v.cameras(cfg, 16)
    ys = cams.centers[:, 1]
    expect = cfg.radius * torch.sin(torch.deg2rad(v.elevation))
    torch.testing.assert_close(ys, expect, atol=1e-4, rtol=0)


def test_reference_and_bake_cameras():
    cfg = CameraConfig(input_elevation_deg=20.0)
    c = reference_camera(cfg).centers[0]
    el = math.radians(20.0)
    torch.testing.assert_close(c, torch.tensor([0.0, 2 * math.sin(el), 2 * math.cos(el)]))
    bake = bake_cameras(cfg, 64)
    assert bake.n_cameras == 26
    y = bake.centers[:, 1] / cfg.radius
    sines = sorted({round(v, 3) for v in y.tolist()})
    s45, s899 = math.sin(math.radians(45)), math.sin(math.radians(89.9))
    assert sines == [round(-s899, 3), round(-s45, 3), 0.0, round(s45, 3), round(s899, 3)]


# ---------------------------------------------------------------------------- stage 1 pieces
def test_ball_init_is_the_official_one():
    from gs_method_dreamgaussian.initialisation import activated, ball_init

    torch.manual_seed(0)
    cfg = Stage1Config(num_points=800)
    params = ball_init(cfg)
    g = activated(params)
    assert g.num_gaussians == 800
    r = g.means.detach().norm(dim=-1)
    assert float(r.max()) <= 0.5
    assert abs(float((r**3).mean()) - 0.125 / 2) < 0.01  # uniform in volume: E[r^3] = R^3 / 2
    assert torch.allclose(g.opacities, torch.full((800,), 0.1))
    assert torch.equal(g.quats, torch.tensor([[1.0, 0, 0, 0]]).expand(800, 4))
    colours = g.colors
    assert float(colours.min()) >= 0.5 and float(colours.max()) <= 0.5 + 0.2821 / 255 + 1e-6
    d2 = torch.cdist(g.means, g.means).square()
    d2.fill_diagonal_(float("inf"))
    nn3 = d2.topk(3, largest=False).values.mean(-1).sqrt()
    torch.testing.assert_close(g.scales, nn3[:, None].expand(800, 3), rtol=1e-4, atol=1e-6)


def _strategy_fixture(n=6, scales=None):
    from gs_method_dreamgaussian.densification import DreamGaussianStrategy
    from gs_method_dreamgaussian.initialisation import make_optimizers

    cfg = Stage1Config(densify_from=2, densify_every=2)
    log_s = torch.log(torch.tensor(scales if scales is not None else [0.01] * n))
    params = torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter(torch.zeros(n, 3)),
            "scales": torch.nn.Parameter(log_s[:, None].repeat(1, 3)),
            "quats": torch.nn.Parameter(torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)),
            "opacities": torch.nn.Parameter(torch.zeros(n)),
            "sh0": torch.nn.Parameter(torch.zeros(n, 1, 3)),
        }
    )
    strategy = DreamGaussianStrategy.from_config(cfg)
    optimizers = make_optimizers(params, cfg)
    strategy.check_sanity(params, optimizers)
    return strategy, params, optimizers, strategy.initialize_state(scene_scale=cfg.scene_extent)


def _info(n, grad_ndc, width=64):
    means2d = torch.zeros(1, n, 2, requires_grad=True)
    # The statistic is the NDC-unit norm: pixel gradients times width / 2.
    means2d.grad = torch.stack([torch.tensor(grad_ndc) / (width / 2), torch.zeros(n)], -1)[None]
    radii = torch.ones(1, n, 2, dtype=torch.int32)
    return {
        "means2d": means2d,
        "radii": radii,
        "width": width,
        "height": width,
        "n_cameras": 1,
        "gaussian_ids": None,
    }


def test_strategy_follows_dreamgaussian_schedule_and_thresholds():
    # Gaussians 0-1 small with high gradient (clone), 2 large with high gradient (split),
    # 3 larger than 0.1 x extent 4 (world-size prune from the first refinement), 4-5 quiet.
    strategy, params, opts, state = _strategy_fixture(scales=[0.01, 0.03, 0.1, 0.5, 0.01, 0.01])
    grads = [0.02, 0.02, 0.02, 0.0, 0.001, 0.005]
    done = strategy.step_post_backward(params, opts, state, 1, _info(6, grads))
    assert state["grad2d"] is None and done == {"duplicated": 0, "split": 0, "pruned": 0}
    done = strategy.step_post_backward(params, opts, state, 2, _info(6, grads))
    assert done == {"duplicated": 2, "split": 1, "pruned": 1}
    assert params["means"].shape[0] == 6 + 2 + 1 - 1
    scales = params["scales"].exp()[:, 0]
    assert int((scales - 0.1 / 1.6).abs().lt(1e-6).sum()) == 2  # the split's two children
    assert float(scales.max()) < 0.5
    assert float(state["grad2d"].abs().sum()) == 0.0  # statistics restart after refining


def test_strategy_prunes_transparent_and_resets_opacity():
    strategy, params, opts, state = _strategy_fixture()
    with torch.no_grad():
        params["opacities"][:2] = -8.0  # opacity 3e-4 < 0.01
    strategy.reset_every = 4
    strategy.step_post_backward(params, opts, state, 2, _info(6, [0.0] * 6))
    assert params["means"].shape[0] == 4
    strategy.step_post_backward(params, opts, state, 4, _info(4, [0.0] * 4))
    assert float(torch.sigmoid(params["opacities"]).max()) <= 0.01 + 1e-6


# ---------------------------------------------------------------------------- full runs
def test_tiny_run_densifies_and_outputs_both_stages(tiny_run):
    out = tiny_run
    counts = out.extras["counts"][0]
    assert len(counts) == 8 and counts[0] == 300
    assert len(set(counts)) > 1, "densification never changed the count"
    d = out.extras["densified"][0]
    assert d["duplicated"] + d["split"] > 0
    g = out.gaussians
    assert g.batch_shape == (1,) and g.num_gaussians == counts[-1] - out.extras["final_pruned"][0]
    assert set(out.timings) == {"prior_load", "stage1", "mesh", "stage2", "total"}
    prof = out.extras["profile"][0]
    for k in ("render", "vae_encode", "unet", "vae_backward", "render_backward", "mesh_extract",
              "uv_unwrap", "bake", "mesh_render", "refine"):  # fmt: skip
        assert prof[k] > 0, k


def test_stage2_texture_is_optimised(tiny_run):
    mesh = tiny_run.meshes[0]
    baked = tiny_run.extras["baked_textures"][0]
    assert mesh.uvs is not None and mesh.texture is not None
    assert mesh.texture.shape == baked.shape == (32, 32, 3)
    assert float((mesh.texture - baked).abs().max()) > 1e-3, "refinement left the texture as baked"
    assert float(mesh.texture.min()) >= 0 and float(mesh.texture.max()) <= 1
    mesh.validate()


def test_textured_mesh_renders_like_the_gaussians_it_was_baked_from():
    from gs_core import Cameras, Gaussians, render
    from gs_method_dreamgaussian.stage2 import extract_mesh
    from gs_method_dreamgaussian.texture_render import WeldedMesh, render_textured

    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(2000, 3), dim=-1)
    colours = torch.stack([(d[:, 0] + 1) / 2, (d[:, 1] + 1) / 2, torch.full((2000,), 0.3)], -1)
    g = Gaussians.from_colors(d * 0.4, colours, 0.035, 0.95)
    cfg = tiny(stage2={"grid_resolution": 40, "texture_size": 64, "bake_resolution": 64})
    cfg = cfg.with_overrides(["stage2.density_level=1.0"])
    mesh = extract_mesh(cfg, g)
    geom = WeldedMesh.from_mesh(mesh)
    logits = torch.logit(mesh.texture.clamp(1e-6, 1 - 1e-6))
    cams = Cameras.orbit([0.0, 90.0, 200.0], [0.0, 20.0, -30.0], radius=2.0, width=48, height=48)
    rgb, alpha, viewcos = render_textured(geom, logits, cams)
    reference = render(g, cams, background=1.0, backend="torch").rgb
    assert float((rgb - reference).abs().mean()) < 0.05
    # Normals point outwards: the visible surface faces the cameras.
    assert float(viewcos[alpha > 0].mean()) > 0.6


def test_reference_only_ablation_fits_the_input_without_a_prior(monkeypatch):
    import gs_method_dreamgaussian.guidance as guidance
    from gs_core import render
    from gs_method_dreamgaussian import DreamGaussian
    from gs_method_dreamgaussian.model import prepare_input

    def no_prior(*a, **k):
        raise AssertionError("the SDS-off ablation loaded a prior")

    monkeypatch.setattr(guidance, "load_prior", no_prior)
    cfg = tiny(
        stage1={"sds": False, "steps": 25, "warmup_reference": False},
        stage2={"enabled": False},
    )
    images = tiny_rgba_images(1, 32)
    with torch.no_grad():
        out = DreamGaussian(cfg).generate(images, seed=0)
    assert out.meshes is None and out.gaussians.batch_shape == (1,)
    view = prepare_input(images[0], cfg.camera)
    cam = reference_camera(cfg.camera)
    fitted = render(out.gaussians[0], cam, background=1.0, backend="torch").rgb
    target = view.rgb.permute(0, 2, 3, 1)
    mse = float((fitted.clamp(0, 1) - target).square().mean())
    grey = float((target - 1.0).square().mean())  # an empty render: the white background
    assert mse < 0.25 * grey, (mse, grey)


def test_densification_off_keeps_the_count():
    from gs_method_dreamgaussian.guidance import load_prior
    from gs_method_dreamgaussian.stage1 import run_stage1

    cfg = tiny(stage1={"densify": False})
    with pytest.warns(Warning, match="random weights"):
        guidance = load_prior(cfg.prior, torch.device("cpu"))
    from gs_method_dreamgaussian.guidance import encode_input
    from gs_method_dreamgaussian.model import prepare_input

    torch.manual_seed(0)
    view = prepare_input(tiny_rgba_images(1, 32)[0], cfg.camera)
    ref = encode_input(guidance.prior, view.rgb, cfg.prior)
    res = run_stage1(cfg, view, guidance=guidance, reference=ref)
    assert set(res.counts) == {300}


def test_refine_starts_at_the_official_ddim_index(monkeypatch):
    from gs_method_dreamgaussian.guidance import encode_input, load_prior
    from gs_priors.samplers import GuidedDenoiser, refine

    cfg = tiny()
    with pytest.warns(Warning, match="random weights"):
        prior = load_prior(cfg.prior, torch.device("cpu")).prior
    seen = []
    real = prior.model_output

    def counting(x, t, c):
        seen.append(int(t[0]))
        return real(x, t, c)

    monkeypatch.setattr(prior, "model_output", counting)
    torch.manual_seed(0)
    ref = encode_input(prior, torch.rand(1, 3, 32, 32), cfg.prior)
    cond = prior.camera_condition(ref, torch.tensor([10.0]), torch.tensor([90.0]))
    # As stage 2 calls it: one denoiser for every refinement, strength 0.8 + 0.15 r.
    denoiser = GuidedDenoiser(prior, cond, 5.0, 1)
    latents = prior.encode_images(torch.rand(1, 3, 32, 32))
    first = refine(prior, latents, cond, strength=0.8, steps=50, denoiser=denoiser)
    assert seen == list(range(181, 0, -20))  # 10 DDIM steps from t = 181, one guided call each
    last = refine(prior, latents, cond, strength=0.95, steps=50, denoiser=denoiser)
    assert last.timesteps.tolist() == [41, 21, 1]
    assert prior.decode_latents(first.latents).shape == (1, 3, prior.image_size, prior.image_size)


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs_are_refused_in_one_line():
    from gs_method_dreamgaussian import DreamGaussian

    model = DreamGaussian(tiny())
    good = tiny_rgba_images(1, 32)
    with pytest.raises(ValidationError, match=r"images: expected RGBA tensor"):
        model.generate(good[:, :3])
    with pytest.raises(ValidationError, match=r"images: expected finite"):
        model.generate(good.clone().fill_(float("nan")))
    with pytest.raises(ValidationError, match=r"images: expected values in \[0, 1\]"):
        model.generate(good * 2)
    empty = good.clone()
    empty[:, 3] = 0
    with pytest.raises(ValidationError, match=r"images\[0\]: expected an object"):
        model.generate(empty)
    with pytest.raises(GS3DError, match="stage1.steps"):
        DreamGaussianConfig.preset("tiny").with_overrides(["stage1.steps=0"])
    with pytest.raises(GS3DError, match="t_range"):
        DreamGaussianConfig.preset("tiny").with_overrides(["stage1.t_range=[0.9, 0.1]"])


def test_background_of_novel_views_per_preset():
    # Official: black or white with p 0.5 (invert_bg_prob); the procedural teacher has only
    # seen white, and its SDS turns black backgrounds into haze (README), so that preset uses
    # white alone.
    assert DreamGaussianConfig.preset("paper").stage1.white_background_prob == 0.5
    assert DreamGaussianConfig.preset("paper_stable").stage1.white_background_prob == 0.5
    assert DreamGaussianConfig.preset("procedural").stage1.white_background_prob == 1.0


def test_procedural_teacher_missing_names_path_and_what_to_do(tmp_path):
    from gs_method_dreamgaussian.guidance import load_prior

    cfg = DreamGaussianConfig.preset("procedural")
    assert cfg.prior.source == "local" and "prior.model_id=PATH" in cfg.prior.missing_hint
    prior = cfg.prior.model_copy(update={"model_id": str(tmp_path / "no-teacher")})
    with pytest.raises(WeightsNotFoundError) as e:
        load_prior(prior, torch.device("cpu"))
    msg = str(e.value)
    assert str(tmp_path / "no-teacher") in msg and "prior.model_id=PATH" in msg
    assert "\n" not in msg


def test_procedural_teacher_loads_from_its_packed_file(tmp_path, monkeypatch):
    from gs_method_dreamgaussian.guidance import load_prior
    from gs_priors.teachers.packing import CACHE_ENV, pack_teacher
    from gs_priors.tiny import save_tiny_zero123

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    packed = pack_teacher(save_tiny_zero123(tmp_path / "teacher"), tmp_path / "zero123.safetensors")
    cfg = DreamGaussianConfig.preset("procedural")
    prior = load_prior(cfg.prior.model_copy(update={"model_id": str(packed)}), torch.device("cpu"))
    assert type(prior.prior).__name__ == "Zero123Guidance"
    assert [p.name for p in (tmp_path / "cache").iterdir()][0].startswith("zero123-")


def test_missing_mesh_extra_is_refused_before_work(monkeypatch):
    import importlib.util

    from gs_method_dreamgaussian import DreamGaussian

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "xatlas" else real(name, *a)
    )
    with pytest.raises(GS3DError, match=r"gs-method-dreamgaussian\[mesh\]"):
        DreamGaussian(tiny()).generate(tiny_rgba_images(1, 32))


def test_prior_config_rejects_tiny_with_a_model_id():
    with pytest.raises(GS3DError, match="tiny_random"):
        DreamGaussianConfig.preset("tiny", prior={"model_id": "org/name"})
    assert PriorConfig().model_id == "ashawkey/zero123-xl-diffusers"
    assert DreamGaussianConfig.preset("paper_stable").prior.model_id.startswith("ashawkey/stable")


# ---------------------------------------------------------------------------- CLI
def test_cli_generate_writes_ply_and_glb(tmp_path):
    from typer.testing import CliRunner

    from gs_core.cli.main import app
    from gs_core.imaging import save_image
    from gs_core.io import load_ply

    img = tmp_path / "in.png"
    save_image(img, tiny_rgba_images(1, 32)[0].permute(1, 2, 0).numpy())
    out, glb = tmp_path / "out.ply", tmp_path / "out.glb"
    args = ["generate", str(img), "--method", "dreamgaussian", "-o", str(out), "--mesh", str(glb),
            "--preset", "tiny", "--seed", "1"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert load_ply(out).num_gaussians > 0 and glb.stat().st_size > 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "--overwrite" in again.output + str(again.exception)


# ---------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_cuda_graph_gives_the_eager_numbers():
    from gs_method_dreamgaussian.guidance import GraphedZero123, encode_input, load_prior

    dev = torch.device("cuda")
    cfg = tiny().prior
    with pytest.warns(Warning, match="random weights"):
        g = load_prior(cfg, dev)
    assert isinstance(g.model, GraphedZero123)
    torch.manual_seed(0)
    ref = encode_input(g.prior, torch.rand(1, 3, 32, 32, device=dev), cfg)
    cond = g.prior.camera_condition(ref, torch.tensor([10.0]), torch.tensor([90.0]))
    from gs_losses.guidance import guided_noise

    x = torch.randn(1, 4, 8, 8, device=dev)
    t = torch.tensor([500], device=dev)
    for _ in range(4):  # warm-up, recording, replays
        graphed = guided_noise(g.model, x, t, cond, 5.0)
    eager = guided_noise(g.prior, x, t, cond, 5.0)
    torch.testing.assert_close(graphed, eager)


def test_the_graphed_prior_satisfies_the_protocol_statically():
    # The CUDA path wraps the prior; its protocol members must exist on the wrapper itself
    # (isinstance() on a runtime protocol ignores __getattr__ from Python 3.12). Built on the
    # CPU: only replaying the graph needs CUDA.
    from gs_losses import SDS
    from gs_method_dreamgaussian.guidance import GraphedZero123, load_prior

    prior = load_prior(tiny().prior, torch.device("cpu")).prior
    graphed = GraphedZero123(prior)
    SDS(graphed)  # raises ValidationError when a member is missing
    assert graphed.num_train_timesteps == prior.num_train_timesteps
    assert graphed.prediction_type == prior.prediction_type
    assert torch.equal(graphed.alphas_cumprod, prior.alphas_cumprod)


def test_the_graphed_prior_encodes_as_the_prior_does():
    # On the CPU the encoder runs eagerly: the reimplemented posterior sampling and scaling
    # must match the prior's own encode_images draw for draw.
    from gs_method_dreamgaussian.guidance import GraphedZero123, load_prior

    prior = load_prior(tiny().prior, torch.device("cpu")).prior
    x = torch.rand(2, 3, 24, 24, requires_grad=True)
    a = GraphedZero123(prior).encode_images(x, torch.Generator().manual_seed(1))
    b = prior.encode_images(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    (ga,) = torch.autograd.grad(a.square().sum(), x)
    (gb,) = torch.autograd.grad(b.square().sum(), x)
    torch.testing.assert_close(ga, gb)


@pytest.mark.gpu
def test_the_graphed_vae_encoder_matches_eager_with_gradients():
    from gs_method_dreamgaussian.guidance import GraphedZero123, load_prior

    prior = load_prior(tiny().prior, torch.device("cuda")).prior
    graphed = GraphedZero123(prior)
    for step in range(3):  # the first call captures, the later ones replay
        x = torch.rand(1, 3, 32, 32, device="cuda", generator=None, requires_grad=True)
        a = graphed.encode_images(x, torch.Generator("cuda").manual_seed(step))
        b = prior.encode_images(x, torch.Generator("cuda").manual_seed(step))
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        (ga,) = torch.autograd.grad(
            (a * torch.arange(a.numel(), device="cuda").view_as(a)).sum(), x
        )
        (gb,) = torch.autograd.grad(
            (b * torch.arange(b.numel(), device="cuda").view_as(b)).sum(), x
        )
        torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-4)
    assert len(graphed._vae_graphs) == 1


def test_fused_adam_gives_the_default_update_and_survives_densification():
    from gs_method_dreamgaussian.initialisation import make_optimizers

    def run(fused: bool):
        cfg = Stage1Config(fused_adam=fused)
        torch.manual_seed(0)
        params = torch.nn.ParameterDict(
            {
                k: torch.nn.Parameter(torch.randn(*shape))
                for k, shape in {
                    "means": (5, 3),
                    "scales": (5, 3),
                    "quats": (5, 4),
                    "opacities": (5,),
                    "sh0": (5, 1, 3),
                }.items()
            }
        )
        opts = make_optimizers(params, cfg)
        assert all(bool(o.defaults["fused"]) == fused for o in opts.values())
        for _ in range(3):
            sum((p * p.detach().sin()).sum() for p in params.values()).backward()
            for o in opts.values():
                o.step()
                o.zero_grad(set_to_none=True)
        return params

    fused, plain = run(True), run(False)
    for k in plain:
        torch.testing.assert_close(fused[k], plain[k])
    # gsplat's strategy ops rewrite the optimiser state on clone / split / prune.
    strategy, params, opts, state = _strategy_fixture(scales=[0.01, 0.03, 0.1, 0.5, 0.01, 0.01])
    assert all(o.defaults["fused"] for o in opts.values())
    sum(p.sum() for p in params.values()).backward()
    for o in opts.values():
        o.step()
    strategy.step_post_backward(params, opts, state, 2, _info(6, [0.02, 0.02, 0.02, 0, 0, 0]))
    sum(p.sum() for p in params.values()).backward()
    for o in opts.values():
        o.step()  # the rewritten exp_avg / exp_avg_sq match the new counts
    assert opts["means"].state[params["means"]]["exp_avg"].shape == params["means"].shape


def test_channels_last_layout_is_applied_on_cuda_only():
    from gs_method_dreamgaussian.guidance import _set_layout, load_prior

    with pytest.warns(Warning, match="random weights"):
        hit = load_prior(tiny(prior={"channels_last": "all"}).prior, torch.device("cpu"))
    assert hit.layout == "none"  # the CPU keeps the contiguous weights

    def last(module):
        convs = [m.weight for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        return {
            w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
            for w in convs
            if w.shape[-1] > 1
        }

    _set_layout(hit.prior, "vae")
    assert last(hit.prior.vae) == {True} and last(hit.prior.unet) == {False}
    _set_layout(hit.prior, "unet")
    assert last(hit.prior.vae) == {False} and last(hit.prior.unet) == {True}
    _set_layout(hit.prior, "all")
    assert last(hit.prior.vae) == {True} and last(hit.prior.unet) == {True}
    _set_layout(hit.prior, "none")
    assert last(hit.prior.vae) == {False} and last(hit.prior.unet) == {False}


@pytest.mark.gpu
def test_channels_last_graphed_prior_gives_the_contiguous_numbers():
    from gs_method_dreamgaussian.guidance import GraphedZero123, load_prior

    dev = torch.device("cuda")
    x = torch.rand(1, 3, 32, 32, device=dev)
    results = []
    for layout in ("none", "all"):
        with pytest.warns(Warning, match="random weights"):
            hit = load_prior(tiny(prior={"channels_last": layout}).prior, dev)
        assert hit.layout == layout and isinstance(hit.model, GraphedZero123)
        for _ in range(3):  # capture, then replay
            xi = x.clone().requires_grad_(True)
            lat = hit.model.encode_images(xi, torch.Generator("cuda").manual_seed(0))
            (g,) = torch.autograd.grad(lat.square().sum(), xi)
        results.append((lat, g))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-3, atol=1e-3)


def test_statistic_without_indexing_equals_gsplats():
    from gsplat.strategy import DefaultStrategy

    torch.manual_seed(0)
    n, c = 50, 2
    info = _info(n, [0.0] * n)
    info["n_cameras"] = c
    info["means2d"] = torch.zeros(c, n, 2, requires_grad=True)
    info["means2d"].grad = torch.randn(c, n, 2) * 1e-3
    info["radii"] = torch.randint(0, 3, (c, n, 2), dtype=torch.int32)
    ours, params, _, state = _strategy_fixture(n=n)
    theirs_state = {"grad2d": None, "count": None, "radii": None}
    for _ in range(2):  # the first call creates the state, the second accumulates
        ours._update_state(params, state, info)
        DefaultStrategy._update_state(ours, params, theirs_state, info)
    assert (info["radii"] == 0).any() and bool(state["count"].gt(0).any())
    torch.testing.assert_close(state["grad2d"], theirs_state["grad2d"])
    torch.testing.assert_close(state["count"], theirs_state["count"])


def test_the_graphed_prior_decodes_as_the_prior_does():
    from gs_method_dreamgaussian.guidance import GraphedZero123, load_prior

    prior = load_prior(tiny().prior, torch.device("cpu")).prior
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(GraphedZero123(prior).decode_latents(z), prior.decode_latents(z))


@pytest.mark.gpu
def test_the_graphed_vae_without_gradients_matches_eager():
    # Stage 2's encode of a render and decode of the refined latents replay forward-only graphs.
    from gs_method_dreamgaussian.guidance import GraphedZero123, load_prior

    prior = load_prior(tiny().prior, torch.device("cuda")).prior
    graphed = GraphedZero123(prior)
    with torch.no_grad():
        for step in range(4):  # warm-up, capture, replays
            x = torch.rand(1, 3, 32, 32, device="cuda")
            a = graphed.encode_images(x, torch.Generator("cuda").manual_seed(step))
            b = prior.encode_images(x, torch.Generator("cuda").manual_seed(step))
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(
                graphed.decode_latents(a), prior.decode_latents(a), rtol=1e-4, atol=1e-4
            )
    assert len(graphed._encode_graph._recordings) == 1
    assert len(graphed._decode_graph._recordings) == 1
