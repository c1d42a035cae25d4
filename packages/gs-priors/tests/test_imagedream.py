"""ImageDream: the official U-Net layout at paper size (meta device), and the prior's behaviour on
a tiny random checkpoint loaded offline (CFG, joint attention, cameras, SDS, DDIM sampling)."""

from __future__ import annotations

import math
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError

# --------------------------------------------------------------------------- official layout
# The U-Net of `ashawkey/imagedream-ipmv-diffusers` (unet/config.json below, read from the hub
# repo) whose weights are the official `sd-v2.1-base-4view-ipmv.pt` minus the
# `model.diffusion_model.` prefix (ashawkey/mvdream_diffusers convert_mvdream_to_diffusers.py
# loads them strictly into MultiViewUNetModel). Key names and shapes written from that
# repo's mv_unet.py: MultiViewUNetModel (time_embed, camera_embed, image_embed = Resampler(dim
# 1024, depth 4, dim_head 64, heads 12, num_queries ip_dim, embedding_dim 1280), input_blocks /
# middle_block / output_blocks of CondSequential), ResBlock (in_layers.0/2, emb_layers.1,
# out_layers.0/3, 1x1 skip_connection when the width changes), SpatialTransformer3D (norm,
# Linear proj_in / proj_out), BasicTransformerBlock3D (attn1 self, attn2 cross with to_k_ip /
# to_v_ip in every transformer, GEGLU ff.net.0.proj / ff.net.2, norm1-3), Downsample `op`,
# Upsample `conv`; PerceiverAttention (norm1, norm2, bias-free to_q, to_kv, to_out) and the
# resampler feed-forward Sequential(LayerNorm, Linear, GELU, Linear) without biases.
OFFICIAL_CONFIG = {
    "_class_name": "MultiViewUNetModel",
    "_diffusers_version": "0.25.0",
    "attention_resolutions": [4, 2, 1],
    "camera_dim": 16,
    "channel_mult": [1, 2, 4, 4],
    "context_dim": 1024,
    "image_size": 32,
    "in_channels": 4,
    "ip_dim": 16,
    "model_channels": 320,
    "num_head_channels": 64,
    "num_res_blocks": 2,
    "out_channels": 4,
    "transformer_depth": 1,
}
# 941.67 M parameters: the hub's fp16 unet/diffusion_pytorch_model.safetensors is 1.88 GB.
OFFICIAL_TOTALS = (941_672_900, 773)


def official_imagedream_unet_shapes(
    c=320, mult=(1, 2, 4, 4), n_res=2, attn_ds=(4, 2, 1), head=64, ctx=1024, cam=16, ip=16
) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def lin(p, i, o, bias=True):
        shapes[f"{p}.weight"] = (o, i)
        if bias:
            shapes[f"{p}.bias"] = (o,)

    def norm(p, ch):
        shapes[f"{p}.weight"] = (ch,)
        shapes[f"{p}.bias"] = (ch,)

    def conv(p, i, o, k=3):
        shapes[f"{p}.weight"] = (o, i, k, k)
        shapes[f"{p}.bias"] = (o,)

    emb = 4 * c

    def res(p, i, o):
        norm(f"{p}.in_layers.0", i)
        conv(f"{p}.in_layers.2", i, o)
        lin(f"{p}.emb_layers.1", emb, o)
        norm(f"{p}.out_layers.0", o)
        conv(f"{p}.out_layers.3", o, o)
        if i != o:
            conv(f"{p}.skip_connection", i, o, 1)

    def st3d(p, ch):
        norm(f"{p}.norm", ch)
        lin(f"{p}.proj_in", ch, ch)
        b = f"{p}.transformer_blocks.0"
        for a in ("attn1", "attn2"):
            lin(f"{b}.{a}.to_q", ch, ch, bias=False)
            src = ch if a == "attn1" else ctx
            lin(f"{b}.{a}.to_k", src, ch, bias=False)
            lin(f"{b}.{a}.to_v", src, ch, bias=False)
            lin(f"{b}.{a}.to_out.0", ch, ch)
        lin(f"{b}.attn2.to_k_ip", ctx, ch, bias=False)
        lin(f"{b}.attn2.to_v_ip", ctx, ch, bias=False)
        lin(f"{b}.ff.net.0.proj", ch, 8 * ch)
        lin(f"{b}.ff.net.2", 4 * ch, ch)
        for k in (1, 2, 3):
            norm(f"{b}.norm{k}", ch)
        lin(f"{p}.proj_out", ch, ch)

    lin("time_embed.0", c, emb)
    lin("time_embed.2", emb, emb)
    lin("camera_embed.0", cam, emb)
    lin("camera_embed.2", emb, emb)
    shapes["image_embed.latents"] = (1, ip, ctx)
    lin("image_embed.proj_in", 1280, ctx)
    lin("image_embed.proj_out", ctx, ctx)
    norm("image_embed.norm_out", ctx)
    for i in range(4):
        a = f"image_embed.layers.{i}.0"
        norm(f"{a}.norm1", ctx)
        norm(f"{a}.norm2", ctx)
        lin(f"{a}.to_q", ctx, 12 * 64, bias=False)
        lin(f"{a}.to_kv", ctx, 2 * 12 * 64, bias=False)
        lin(f"{a}.to_out", 12 * 64, ctx, bias=False)
        norm(f"image_embed.layers.{i}.1.0", ctx)
        lin(f"image_embed.layers.{i}.1.1", ctx, 4 * ctx, bias=False)
        lin(f"image_embed.layers.{i}.1.3", 4 * ctx, ctx, bias=False)

    conv("input_blocks.0.0", 4, c)
    chans, ch, ds, idx = [c], c, 1, 1
    for level, m in enumerate(mult):
        for _ in range(n_res):
            res(f"input_blocks.{idx}.0", ch, m * c)
            ch = m * c
            if ds in attn_ds:
                st3d(f"input_blocks.{idx}.1", ch)
            chans.append(ch)
            idx += 1
        if level != len(mult) - 1:
            conv(f"input_blocks.{idx}.0.op", ch, ch)
            chans.append(ch)
            ds *= 2
            idx += 1
    res("middle_block.0", ch, ch)
    st3d("middle_block.1", ch)
    res("middle_block.2", ch, ch)
    idx = 0
    for level, m in reversed(list(enumerate(mult))):
        for i in range(n_res + 1):
            res(f"output_blocks.{idx}.0", ch + chans.pop(), m * c)
            ch = m * c
            j = 1
            if ds in attn_ds:
                st3d(f"output_blocks.{idx}.1", ch)
                j = 2
            if level and i == n_res:
                conv(f"output_blocks.{idx}.{j}.conv", ch, ch)
                ds //= 2
            idx += 1
    norm("out.0", c)
    conv("out.2", c, 4)
    assert head == 64 and all(s[0] % head == 0 for k, s in shapes.items() if "to_q" in k)
    return shapes


def _meta_unet(config: dict):
    from gs_priors.multiview_unet import MultiViewUNetModel

    with torch.device("meta"):
        return MultiViewUNetModel.from_config(config)


def test_multiview_unet_matches_the_official_checkpoint_layout():
    model = _meta_unet(OFFICIAL_CONFIG)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = official_imagedream_unet_shapes()
    assert sorted(set(official) - set(ours)) == []
    assert sorted(set(ours) - set(official)) == []
    assert {k: s for k, s in ours.items() if official[k] != s} == {}
    assert (sum(math.prod(s) for s in official.values()), len(official)) == OFFICIAL_TOTALS
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_TOTALS[0]


def test_multiview_unet_module_tree_spots():
    from gs_priors.image_prompt_resampler import ImagePromptResampler
    from gs_priors.multiview_unet import Downsample, ResBlock, SpatialTransformer3D, Upsample

    m = _meta_unet(OFFICIAL_CONFIG)
    mods = dict(m.named_modules())
    assert isinstance(mods["image_embed"], ImagePromptResampler)
    assert isinstance(mods["input_blocks.1.1"], SpatialTransformer3D)
    assert isinstance(mods["input_blocks.3.0"], Downsample)
    assert isinstance(mods["input_blocks.11.0"], ResBlock) and "input_blocks.11.1" not in mods
    assert isinstance(mods["middle_block.1"], SpatialTransformer3D)
    assert isinstance(mods["output_blocks.2.1"], Upsample)
    assert isinstance(mods["output_blocks.5.2"], Upsample)
    assert len(m.input_blocks) == 12 and len(m.output_blocks) == 12
    # 64-channel heads: 5, 10 and 20 of them at the three attention widths.
    heads = {
        mods[f"{p}.transformer_blocks.0.attn1"].num_heads
        for p in ("input_blocks.1.1", "input_blocks.4.1", "input_blocks.7.1")
    }
    assert heads == {5, 10, 20}
    # MVDream (no image prompt) is the same class with ip_dim 0: no resampler, no to_k_ip.
    mv = _meta_unet({**OFFICIAL_CONFIG, "ip_dim": 0})
    assert not any("image_embed" in k or "_ip" in k for k in mv.state_dict())


def test_paper_size_random_prior_for_timing():
    from gs_priors.tiny import paper_size_imagedream

    prior = paper_size_imagedream(device="meta")
    assert prior.image_size == 256 and prior.unet.config.image_size == 32
    assert {k: tuple(v.shape) for k, v in prior.unet.state_dict().items()} == (
        official_imagedream_unet_shapes()
    )
    # SD 2.1's VAE (83.65 M), a ViT-H/14 image encoder (630.8 M) and 23 text layers of 1024.
    assert sum(p.numel() for p in prior.vae.parameters()) == 83_653_863
    assert sum(p.numel() for p in prior.image_encoder.parameters()) == 630_766_080
    assert prior.text_encoder.config.num_hidden_layers == 23


# --------------------------------------------------------------------------- tiny checkpoint


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # The tiny model is a few hundred small ops: on a shared 2-core machine intra-op threads
    # only add synchronisation (a forward measured 35 ms on one thread, 5.6 s on two).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Nothing here may reach the hub: the tiny checkpoints are local, official ids must fail at once.
pytestmark = pytest.mark.usefixtures("offline_hub")


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory):
    from gs_priors.tiny import save_tiny_imagedream

    return save_tiny_imagedream(tmp_path_factory.mktemp("tiny-imagedream"))


@pytest.fixture(scope="module")
def dream(dream_dir):
    from gs_priors.imagedream import ImageDreamGuidance

    return ImageDreamGuidance.from_pretrained(dream_dir, latent_sample="mode")


@pytest.fixture(scope="module")
def ref(dream):
    g = torch.Generator().manual_seed(0)
    return dream.encode_reference(torch.rand(1, 4, 20, 20, generator=g), prompt="a chair")


def _raw_frames(dream, x, t, cond, null: bool):
    """The official 5-frame U-Net input for one object, built by hand from the tiny model."""
    text = cond.null_text_embeddings if null else cond.text_embeddings
    tokens = cond.null_image_tokens if null else cond.image_tokens
    latent = torch.zeros_like(cond.input_latents[:1]) if null else cond.input_latents[:1]
    return dream.unet(
        torch.cat([x, latent]),
        torch.cat([t, t[:1]]),
        context=torch.cat([text, text[:1]]),
        camera=torch.cat([cond.cameras, torch.zeros(1, 16)]),
        num_frames=5,
        ip_tokens=torch.cat([tokens, tokens[:1]]),
    ).sample[:4]


def test_reference_encoding_follows_the_pipeline(dream, ref):
    from gs_priors import DiffusionPrior

    assert isinstance(dream, DiffusionPrior)
    assert (dream.prediction_type, dream.num_train_timesteps, dream.image_size) == (
        "epsilon",
        1000,
        16,
    )
    assert ref.text_embeddings.shape == (1, 16, 16) and ref.image_tokens.shape == (1, 4, 16)
    g = torch.Generator().manual_seed(0)
    rgba = torch.rand(1, 4, 20, 20, generator=g)
    white = rgba[:, :3] * rgba[:, 3:] + (1 - rgba[:, 3:])
    with torch.no_grad():
        clip_in = torch.nn.functional.interpolate(
            white, (32, 32), mode="bicubic", align_corners=False, antialias=True
        ).clamp(0, 1)
        clip_in = (clip_in - dream.clip_mean) / dream.clip_std
        feats = dream.image_encoder(clip_in, output_hidden_states=True).hidden_states[-2]
        assert feats.shape == (1, 17, 16)  # penultimate layer, CLS + 16 patches
        assert torch.allclose(ref.image_tokens, dream.unet.image_embed(feats), atol=1e-5)
        # Unconditional tokens: the resampler over zero features, not zero tokens.
        null = dream.unet.image_embed(torch.zeros_like(feats))
        assert torch.allclose(ref.null_image_tokens, null, atol=1e-5) and null.abs().sum() > 0
        lat = dream.vae.encode(
            2 * torch.nn.functional.interpolate(white, (16, 16), mode="bilinear") - 1
        ).latent_dist.mode()
    assert torch.allclose(ref.input_latents, lat * dream.vae.config.scaling_factor, atol=1e-5)


def test_guided_model_output_is_the_official_five_frame_forward_under_cfg(dream, ref):
    cond = dream.condition(ref)
    assert cond.num_views == 4 and cond.batch_size == 4 and cond.cameras.shape == (4, 16)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 4, 8, 8, generator=g)
    t = torch.full((4,), 420)
    scale = 5.0
    with torch.no_grad():
        e_c = _raw_frames(dream, x, t, cond, null=False)
        e_u = _raw_frames(dream, x, t, cond, null=True)
        expected = e_u + scale * (e_c - e_u)
        both = dream.model_output(
            torch.cat([x, x]), torch.cat([t, t]), type(cond).cat([dream.null_condition(cond), cond])
        )
        assert torch.allclose(both[4:], e_c, atol=1e-5) and torch.allclose(both[:4], e_u, atol=1e-5)
        assert torch.allclose(both[:4] + scale * (both[4:] - both[:4]), expected, atol=1e-4)
        assert not torch.allclose(e_c, e_u, atol=1e-3)
        try:
            from gs_losses.guidance import guided_noise
        except ImportError:  # gs-priors' own test environment installs no gs-losses
            return
        assert torch.allclose(guided_noise(dream, x, t, cond, scale), expected, atol=1e-4)


def test_joint_attention_mixes_the_frames_of_an_object(dream):
    unet = dream.unet
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 4, 8, 8, generator=g)
    kwargs = {
        "timesteps": torch.full((5,), 300),
        "context": torch.randn(5, 16, 16, generator=g),
        "camera": torch.randn(5, 16, generator=g),
        "ip_tokens": torch.randn(5, 4, 16, generator=g),
    }
    x2 = x.clone()
    x2[2] += 1.0  # only frame 2 changes
    with torch.no_grad():
        joint = unet(x, num_frames=5, **kwargs).sample
        joint2 = unet(x2, num_frames=5, **kwargs).sample
        alone = unet(x, num_frames=1, **kwargs).sample
        alone2 = unet(x2, num_frames=1, **kwargs).sample
    # Frame by frame, the other frames cannot see the change; jointly they all do.
    assert torch.equal(alone[[0, 1, 3, 4]], alone2[[0, 1, 3, 4]])
    for f in (0, 1, 3, 4):
        assert (joint[f] - joint2[f]).abs().max() > 1e-4
    # Two objects in one batch stay separate: object 1 is unaffected by object 0's frames.
    with torch.no_grad():
        two = unet(
            torch.cat([x, x]), num_frames=5, **{k: torch.cat([v, v]) for k, v in kwargs.items()}
        ).sample
        two2 = unet(
            torch.cat([x2, x]), num_frames=5, **{k: torch.cat([v, v]) for k, v in kwargs.items()}
        ).sample
    assert torch.allclose(two[5:], two2[5:], atol=1e-6) and torch.allclose(
        two[:5], joint, atol=1e-5
    )


def test_camera_embedding_changes_the_output(dream, ref):
    from gs_priors.imagedream import orbit_cameras

    front = dream.condition(ref)
    raised = dream.condition(ref, orbit_cameras(30.0, [0.0, 90.0, 180.0, 270.0]))
    x, t = (
        torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(3)),
        torch.full((4,), 500),
    )
    with torch.no_grad():
        a = dream.model_output(x, t, front)
        b = dream.model_output(x, t, raised)
        assert torch.equal(a, dream.model_output(x, t, front))
    assert (a - b).abs().max() > 1e-4
    # The camera enters only through the MLP added to the timestep embedding.
    with torch.no_grad():
        emb = dream.unet.camera_embed(raised.cameras) - dream.unet.camera_embed(front.cameras)
    assert emb.abs().max() > 0


def test_cameras_follow_imagedream_convention():
    from gs_core import Cameras
    from gs_priors.imagedream import imagedream_cameras, orbit_cameras, orthogonal_cameras

    cams = orthogonal_cameras()
    assert cams.shape == (4, 16)
    # Azimuth 0, elevation 0: camera at +z of the y-up world, i.e. at -y of the z-up world,
    # OpenGL axes right = +x, up = +z (world), backward = -y; flattened row-major.
    expected_front = torch.tensor([1, 0, 0, 0, 0, 0, -1, -1, 0, 1, 0, 0, 0, 0, 0, 1.0])
    assert torch.allclose(cams[0], expected_front, atol=1e-6)
    # ImageDream's create_camera_to_world_matrix + convert_opengl_to_blender for (30, 90).
    el, az = math.radians(30.0), math.radians(90.0)
    pos = torch.tensor([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    fwd = -pos / pos.norm()
    right = torch.linalg.cross(fwd, torch.tensor([0.0, 1.0, 0.0]))
    right = right / right.norm()
    up = torch.linalg.cross(right, fwd)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -fwd, pos
    flip = torch.tensor([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]])
    assert torch.allclose(orbit_cameras(30.0, 90.0)[0], (flip @ c2w).flatten(), atol=1e-6)
    # Any orbit radius gives the same camera (normalised onto the unit sphere).
    far = Cameras.orbit([0, 90, 180, 270], 0.0, radius=2.7)
    assert torch.allclose(imagedream_cameras(far), cams, atol=1e-6)
    with pytest.raises(ValidationError, match="cameras"):
        imagedream_cameras(torch.eye(4))


def test_condition_batches_objects_independently(dream):
    from gs_priors.imagedream import ImageDreamCondition

    g = torch.Generator().manual_seed(4)
    images = torch.rand(2, 3, 16, 16, generator=g)
    two = dream.encode_reference(images)
    cond = dream.condition(two)
    assert isinstance(cond, ImageDreamCondition) and cond.batch_size == 8
    x, t = torch.randn(8, 4, 8, 8, generator=g), torch.tensor([100] * 4 + [700] * 4)
    with torch.no_grad():
        both = dream.model_output(x, t, cond)
        first = dream.model_output(
            x[:4], t[:4], dream.condition(dream.encode_reference(images[:1]))
        )
        second = dream.model_output(
            x[4:], t[4:], dream.condition(dream.encode_reference(images[1:]))
        )
    assert torch.allclose(both, torch.cat([first, second]), atol=1e-5)
    # The input image matters (it is the fifth frame and the image prompt).
    with torch.no_grad():
        swapped = dream.model_output(
            x[:4], t[:4], dream.condition(dream.encode_reference(images[1:]))
        )
    assert (both[:4] - swapped).abs().max() > 1e-4
    with pytest.raises(ValidationError, match="latents_t"):
        dream.model_output(x[:6], t[:6], cond)
    with pytest.raises(ValidationError, match="condition"):
        dream.model_output(x, t, two)
    with pytest.raises(ValidationError, match="cameras"):
        dream.condition(two, torch.zeros(4, 12))


def test_short_ddim_sample(dream, ref, dream_dir):
    from diffusers import DDIMScheduler

    from gs_priors.samplers import sample

    cond = dream.condition(ref)
    result = sample(
        dream,
        cond,
        (4, 4, 8, 8),
        steps=4,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
    )
    # The shared sampler is a plain DDIM loop over [uncond; cond] of the checkpoint's schedule.
    scheduler = DDIMScheduler.from_pretrained(dream_dir / "scheduler", local_files_only=True)
    assert dream.scheduler_config["num_train_timesteps"] == 1000
    scheduler.set_timesteps(4)
    batch = type(cond).cat([dream.null_condition(cond), cond])
    x = result.noise
    with torch.no_grad():
        for t in scheduler.timesteps:
            e_u, e_c = dream.model_output(torch.cat([x, x]), torch.full((8,), int(t)), batch).chunk(
                2
            )
            x = scheduler.step(e_u + 5.0 * (e_c - e_u), t, x).prev_sample
    assert torch.equal(result.timesteps.cpu(), scheduler.timesteps)
    assert torch.allclose(result.latents, x, atol=1e-4) and torch.isfinite(x).all()
    again = sample(
        dream,
        cond,
        (4, 4, 8, 8),
        steps=4,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(again.latents, result.latents)
    other = sample(
        dream,
        cond,
        (4, 4, 8, 8),
        steps=4,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert not torch.allclose(other.latents, result.latents)
    views = dream.decode_latents(result.latents)
    assert views.shape == (4, 3, 16, 16) and views.min() >= 0 and views.max() <= 1


def test_sds_runs_against_imagedream(dream, ref):
    gs_losses = pytest.importorskip("gs_losses")

    cond = dream.condition(ref)
    renders = torch.rand(1, 4, 3, 24, 24, requires_grad=True)
    sds = gs_losses.SDS(
        dream, gs_losses.SDSConfig(guidance_scale=5.0, timesteps={"t_range": (0.02, 0.3)})
    )
    out = sds.compute(renders, cond, generator=torch.Generator().manual_seed(5))
    out.loss.backward()
    assert out.latents.shape == (4, 4, 8, 8) and len(set(out.t.tolist())) == 1
    assert torch.isfinite(renders.grad).all() and renders.grad.abs().sum() > 0
    assert not any(p.grad is not None for p in dream.parameters())


def test_lora_student_adapts_the_multiview_unet(dream_dir):
    from gs_priors import lora_student
    from gs_priors.imagedream import ImageDreamGuidance

    teacher = ImageDreamGuidance.from_pretrained(dream_dir, latent_sample="mode")
    student = lora_student(teacher, rank=2)
    lora = student.trainable_parameters()
    assert lora and {p for p in teacher.parameters() if p.requires_grad} == set(lora)
    cond = teacher.condition(teacher.encode_reference(torch.rand(1, 3, 16, 16)))
    x, t = torch.randn(4, 4, 8, 8), torch.full((4,), 250)
    with torch.no_grad():
        base = teacher.model_output(x, t, cond)
        assert torch.allclose(student.model_output(x, t, cond), base, atol=1e-6)
        for p in lora:
            p.add_(0.1)
        assert not torch.allclose(student.model_output(x, t, cond), base, atol=1e-5)
        assert torch.allclose(teacher.model_output(x, t, cond), base, atol=1e-6)


def test_loading_errors_name_what_is_missing(dream_dir, tmp_path):
    from gs_priors.imagedream import COMPONENTS, ImageDreamGuidance
    from gs_priors.tiny import tiny_multiview_unet

    assert all((dream_dir / c).is_dir() for c in COMPONENTS)
    with pytest.raises(WeightsNotFoundError) as e:
        ImageDreamGuidance.from_pretrained("gs3d-test/no-such-imagedream")
    assert "gs3d-test/no-such-imagedream" in str(e.value) and "hf download" in str(e.value)
    with pytest.raises(WeightsNotFoundError, match="missing"):
        ImageDreamGuidance.from_pretrained(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(dream_dir, broken)
    shutil.rmtree(broken / "image_encoder")
    with pytest.raises(FileFormatError, match="image_encoder"):
        ImageDreamGuidance.from_pretrained(broken)
    shutil.copytree(dream_dir / "image_encoder", broken / "image_encoder")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="unet"):
        ImageDreamGuidance.from_pretrained(broken)
    # An MVDream-style U-Net (no image prompt) is not an ImageDream checkpoint.
    shutil.rmtree(broken / "unet")
    tiny_multiview_unet(ip_dim=0).save_pretrained(broken / "unet")
    with pytest.raises(FileFormatError, match="ip_dim"):
        ImageDreamGuidance.from_pretrained(broken)
