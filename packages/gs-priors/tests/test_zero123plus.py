"""Zero123++: the official checkpoint layout at paper size (meta device), and the prior's
behaviour on a tiny random checkpoint loaded offline (conditioning, latent scaling, reference
attention, CFG, a full six-view sample, students)."""

from __future__ import annotations

import json
import math
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError

# --------------------------------------------------------------------------- official layout
# Facts about the official checkpoints (sudo-ai/zero123plus-v1.1, -v1.2), from:
# - the diffusers module tree and parameter counts of sudo-ai/zero123plus-v1.2 loaded with
#   diffusers (SoarCraft/Stable123Keypoints, zero123plus_model_structure.md): U-Net 865,910,724
#   (conv_in 4 -> 320, Linear proj_in / proj_out, attn2 keys/values from 1024-d context, GEGLU
#   320 -> 2560), VAE 83,653,863, text encoder 340,387,840 (23 layers, 1024 wide, 49408 x 1024
#   tokens, 77 positions), vision encoder 632,076,800 (32 layers, 1280 wide, 14x14 patches, 257
#   positions, visual_projection 1280 -> 1024), scheduler EulerAncestralDiscreteScheduler with
#   linear betas 0.00085..0.012 and v_prediction;
# - the hub's model_index.json of both versions: ramping_coefficients, 77 values (v1.1 starts
#   0.0, 0.2060057818889618, ...); v1.2's `_name_or_path` is sudo-ai/zero123plus-v1.1 and its
#   U-Net config's is stabilityai/stable-diffusion-2, whose U-Net config (SD2 768-v) has
#   attention_head_dim [5, 10, 20, 20], cross_attention_dim 1024, use_linear_projection true;
# - the official pipeline (SUDO-AI-3D/zero123plus diffusers-support/pipeline.py): reference
#   attention wraps the processors whose name ends with "attn1.processor".
# The v1.1 unet/config.json itself could not be read here; v1.1 and v1.2 share the layout (v1.2
# is fine-tuned from v1.1 and loads with the same pipeline).
OFFICIAL_PARAMETERS = {
    "unet": 865_910_724,
    "vae": 83_653_863,
    "text_encoder": 340_387_840,
    "vision_encoder": 632_076_800,
}
RAMPING_LENGTH = 77
SELF_ATTENTION_LAYERS = 16  # 2 per CrossAttn down block x 3, 1 in the middle, 3 per up block x 3


def official_sd2_unet_shapes(
    ch=(320, 640, 1280, 1280), ctx=1024, temb=1280, in_ch=4
) -> dict[str, tuple[int, ...]]:
    """Every key and shape of the SD2-layout U-Net in diffusers naming, written from the module
    tree of the official checkpoint."""
    s: dict[str, tuple[int, ...]] = {}

    def lin(p, i, o, bias=True):
        s[f"{p}.weight"] = (o, i)
        if bias:
            s[f"{p}.bias"] = (o,)

    def norm(p, c):
        s[f"{p}.weight"] = (c,)
        s[f"{p}.bias"] = (c,)

    def conv(p, i, o, k=3):
        s[f"{p}.weight"] = (o, i, k, k)
        s[f"{p}.bias"] = (o,)

    def resnet(p, i, o):
        norm(f"{p}.norm1", i)
        conv(f"{p}.conv1", i, o)
        lin(f"{p}.time_emb_proj", temb, o)
        norm(f"{p}.norm2", o)
        conv(f"{p}.conv2", o, o)
        if i != o:
            conv(f"{p}.conv_shortcut", i, o, 1)

    def transformer(p, c):
        norm(f"{p}.norm", c)
        lin(f"{p}.proj_in", c, c)
        b = f"{p}.transformer_blocks.0"
        for n in (1, 2, 3):
            norm(f"{b}.norm{n}", c)
        for a, kv in (("attn1", c), ("attn2", ctx)):
            lin(f"{b}.{a}.to_q", c, c, bias=False)
            lin(f"{b}.{a}.to_k", kv, c, bias=False)
            lin(f"{b}.{a}.to_v", kv, c, bias=False)
            lin(f"{b}.{a}.to_out.0", c, c)
        lin(f"{b}.ff.net.0.proj", c, 8 * c)
        lin(f"{b}.ff.net.2", 4 * c, c)
        lin(f"{p}.proj_out", c, c)

    conv("conv_in", in_ch, ch[0])
    lin("time_embedding.linear_1", ch[0], temb)
    lin("time_embedding.linear_2", temb, temb)
    prev = ch[0]
    for i, c in enumerate(ch):
        for j in range(2):
            resnet(f"down_blocks.{i}.resnets.{j}", prev if j == 0 else c, c)
            if i < 3:
                transformer(f"down_blocks.{i}.attentions.{j}", c)
        if i < 3:
            conv(f"down_blocks.{i}.downsamplers.0.conv", c, c)
        prev = c
    transformer("mid_block.attentions.0", ch[-1])
    resnet("mid_block.resnets.0", ch[-1], ch[-1])
    resnet("mid_block.resnets.1", ch[-1], ch[-1])
    rev = ch[::-1]
    prev_out = rev[0]
    for i, c in enumerate(rev):
        skip_last = rev[min(i + 1, len(ch) - 1)]
        for j in range(3):
            skip = skip_last if j == 2 else c
            resnet(f"up_blocks.{i}.resnets.{j}", (prev_out if j == 0 else c) + skip, c)
            if i > 0:
                transformer(f"up_blocks.{i}.attentions.{j}", c)
        if i < 3:
            conv(f"up_blocks.{i}.upsamplers.0.conv", c, c)
        prev_out = c
    norm("conv_norm_out", ch[0])
    conv("conv_out", ch[0], 4)
    return s


def test_paper_size_modules_match_the_official_checkpoint_layout():
    from gs_priors.zero123plus import (
        PAPER_CONFIGS,
        ReferenceAttnProcessor,
        build_modules,
        install_reference_attention,
    )

    with torch.device("meta"):
        modules = build_modules(PAPER_CONFIGS)
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in modules.items()}
    assert counts == OFFICIAL_PARAMETERS

    unet = modules["unet"]
    expected = official_sd2_unet_shapes()
    got = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    assert set(got) == set(expected), (
        sorted(set(got) - set(expected))[:5],
        sorted(set(expected) - set(got))[:5],
    )
    assert got == expected
    assert sum(math.prod(v) for v in expected.values()) == OFFICIAL_PARAMETERS["unet"]
    # Heads of 64 channels (attention_head_dim [5, 10, 20, 20] counts heads in SD2 configs).
    attn = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1
    assert (attn.heads, attn.inner_dim // attn.heads) == (5, 64)
    # The ramp is not a U-Net weight: the pipeline stores it in model_index.json.
    assert not any("ramp" in k for k in got)

    # transformers >= 5 drops the official "text_model." prefix when loading CLIPTextModel.
    text = {
        k.removeprefix("text_model."): tuple(v.shape)
        for k, v in modules["text_encoder"].state_dict().items()
    }
    assert text["embeddings.token_embedding.weight"] == (49408, 1024)
    assert text["embeddings.position_embedding.weight"] == (RAMPING_LENGTH, 1024)
    assert text["encoder.layers.22.mlp.fc1.weight"] == (4096, 1024)
    assert "encoder.layers.23.mlp.fc1.weight" not in text
    vision = {k: tuple(v.shape) for k, v in modules["vision_encoder"].state_dict().items()}
    assert vision["vision_model.embeddings.patch_embedding.weight"] == (1280, 3, 14, 14)
    assert vision["vision_model.embeddings.position_embedding.weight"] == (257, 1280)
    assert vision["vision_model.encoder.layers.31.mlp.fc1.weight"] == (5120, 1280)
    assert vision["visual_projection.weight"] == (1024, 1280)
    vae = {k: tuple(v.shape) for k, v in modules["vae"].state_dict().items()}
    assert vae["encoder.conv_out.weight"] == (8, 512, 3, 3)
    assert vae["quant_conv.weight"] == (8, 8, 1, 1)
    assert vae["decoder.conv_in.weight"] == (512, 4, 3, 3)
    assert vae["decoder.conv_out.weight"] == (3, 128, 3, 3)

    state = install_reference_attention(unet)
    wrapped = [n for n, p in unet.attn_processors.items() if isinstance(p, ReferenceAttnProcessor)]
    assert len(wrapped) == SELF_ATTENTION_LAYERS
    assert all(n.endswith("attn1.processor") for n in wrapped)
    assert install_reference_attention(unet) is state


# --------------------------------------------------------------------------- tiny checkpoint
# Nothing here may reach the hub: the tiny checkpoints are local, official ids must fail at once.
pytestmark = pytest.mark.usefixtures("offline_hub")


@pytest.fixture(scope="module")
def zpp_dir(tmp_path_factory):
    from gs_priors.tiny import save_tiny_zero123plus

    return save_tiny_zero123plus(tmp_path_factory.mktemp("tiny-zero123plus"))


@pytest.fixture(scope="module")
def zpp(zpp_dir):
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE
    from gs_priors.zero123plus import Zero123PlusGuidance

    return Zero123PlusGuidance.from_pretrained(zpp_dir, view_size=TINY_ZERO123PLUS_VIEW_SIZE)


def test_loads_offline_with_the_official_schedule_and_layout(zpp, zpp_dir):
    from gs_priors import DiffusionPrior

    assert isinstance(zpp, DiffusionPrior)
    assert zpp.prediction_type == "v_prediction" and zpp.num_train_timesteps == 1000
    betas = torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64)
    assert torch.allclose(zpp.alphas_cumprod.double(), torch.cumprod(1 - betas, 0), atol=1e-6)
    assert zpp.grid_size == (24, 16) and zpp.latent_shape(2) == (2, 4, 12, 8)
    assert (zpp.clip_size, zpp.reference_size) == (32, 12)
    assert torch.equal(zpp.reference_std.flatten(), torch.full((3,), 0.8))
    index = json.loads((zpp_dir / "model_index.json").read_text())
    assert torch.allclose(zpp.ramping, torch.tensor(index["ramping_coefficients"]))
    assert zpp.version == "v1.1" and zpp.views[1] == (90.0, -20.0)


def test_condition_is_ramped_clip_plus_text_and_a_gray_reference(zpp):
    import torch.nn.functional as F

    rgba = torch.rand(2, 4, 12, 12, generator=torch.Generator().manual_seed(0))
    cond = zpp.encode_reference(rgba, generator=torch.Generator().manual_seed(1))
    assert cond.embeddings.shape == (2, 16, 16) and cond.reference_latents.shape == (2, 4, 6, 6)
    assert cond.reference_noise is None
    gray = rgba[:, :3] * rgba[:, 3:] + (127 / 255) * (1 - rgba[:, 3:])
    with torch.no_grad():
        ids = zpp.tokenizer([""], padding="max_length", max_length=16, return_tensors="pt")
        text = zpp.text_encoder(ids.input_ids)[0]
        clip_in = F.interpolate(gray, (32, 32), mode="bicubic", antialias=True).clamp(0, 1)
        mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
        std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
        image = zpp.vision_encoder((clip_in - mean) / std).image_embeds
        expected = text + image[:, None, :] * zpp.ramping[None, :, None]
        assert torch.allclose(cond.embeddings, expected, atol=1e-5)
        # Unconditional: the text states alone, and the latent of an all-zero normalised image.
        assert torch.allclose(cond.null_embeddings, text.expand(2, -1, -1), atol=1e-6)
        g = torch.Generator().manual_seed(1)
        ref = zpp.vae.encode((gray - 0.5) / 0.8).latent_dist.sample(g)
        # One draw for the whole batch: every row's unconditional image is the same.
        null = zpp.vae.encode(torch.zeros(1, 3, 12, 12)).latent_dist.sample(g).expand(2, -1, -1, -1)
    assert torch.allclose(cond.reference_latents, ref, atol=1e-5)
    assert torch.allclose(cond.null_reference_latents, null, atol=1e-5)
    uncond = zpp.null_condition(cond)
    assert torch.equal(uncond.embeddings, cond.null_embeddings)
    assert torch.equal(uncond.reference_latents, cond.null_reference_latents)


def test_latents_are_scaled_and_shifted_and_images_scaled(zpp_dir):
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE
    from gs_priors.zero123plus import Zero123PlusGuidance

    z = Zero123PlusGuidance.from_pretrained(
        zpp_dir, view_size=TINY_ZERO123PLUS_VIEW_SIZE, latent_sample="mode"
    )
    grid = torch.rand(1, 3, 24, 16, requires_grad=True)
    latents = z.encode_images(grid)
    sf = z.vae.config.scaling_factor
    with torch.no_grad():
        raw = z.vae.encode((2 * grid - 1) * 0.5 / 0.8).latent_dist.mode()
        assert torch.allclose(latents, (raw * sf - 0.22) * 0.75, atol=1e-5)
        decoded = z.vae.decode(raw).sample / (0.5 / 0.8)
        assert torch.allclose(z.decode_latents(latents), (decoded / 2 + 0.5).clamp(0, 1), atol=1e-5)
    latents.sum().backward()
    assert torch.isfinite(grid.grad).all() and grid.grad.abs().sum() > 0
    # Renders of another size are resized to the grid.
    assert z.encode_images(torch.rand(2, 4, 48, 32)).shape == (2, 4, 12, 8)


def _condition_like(zpp, reference, noise):
    from gs_priors.zero123plus import Zero123PlusCondition

    base = zpp.encode_reference(
        torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    )
    return Zero123PlusCondition(
        embeddings=base.embeddings,
        reference_latents=reference,
        null_embeddings=base.null_embeddings,
        null_reference_latents=torch.zeros_like(reference),
        reference_noise=noise,
    )


def test_reference_attention_reads_the_write_pass_of_the_noised_condition(zpp):
    g = torch.Generator().manual_seed(4)
    x_t, t = torch.randn(1, 4, 12, 8, generator=g), torch.tensor([400])
    reference = torch.randn(1, 4, 12, 8, generator=g)
    noise = torch.randn(1, 4, 12, 8, generator=g)
    cond = _condition_like(zpp, reference, noise)
    with torch.no_grad():
        plain = zpp.unet(x_t, t, encoder_hidden_states=cond.embeddings).sample
        out = zpp.model_output(x_t, t, cond)
        assert out.shape == x_t.shape and out.dtype == torch.float32
        # The reference path changes the prediction, and only through the reference latent.
        assert (out - plain).abs().max() > 1e-3
        other = _condition_like(zpp, reference + 1.0, noise)
        assert (zpp.model_output(x_t, t, other) - out).abs().max() > 1e-3
        # When the noised reference equals x_t, every self-attention sees its own tokens twice:
        # softmax over duplicated keys and values is plain attention, so the U-Net's own output
        # comes back - only if the read pass concatenates the same layer's write-pass tokens.
        ab = zpp.alphas_cumprod[t]
        same = _condition_like(zpp, (x_t - (1 - ab).sqrt() * noise) / ab.sqrt(), noise)
        assert torch.allclose(zpp.model_output(x_t, t, same), plain, atol=1e-4)
    assert zpp.unet.reference_attention.mode == "off" and not zpp.unet.reference_attention.bank


def test_reference_noise_is_fresh_per_call_unless_fixed(zpp):
    rgb = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    x_t, t = torch.randn(1, 4, 12, 8), torch.tensor([700])
    fresh = zpp.encode_reference(rgb)
    with torch.no_grad():
        a, b = zpp.model_output(x_t, t, fresh), zpp.model_output(x_t, t, fresh)
        assert (a - b).abs().max() > 1e-5
        torch.manual_seed(0)
        c = zpp.model_output(x_t, t, fresh)
        torch.manual_seed(0)
        assert torch.equal(c, zpp.model_output(x_t, t, fresh))
        fixed = zpp.encode_reference(
            rgb, generator=torch.Generator().manual_seed(6), fixed_noise=True
        )
        assert fixed.reference_noise.shape == fixed.reference_latents.shape
        assert torch.equal(zpp.model_output(x_t, t, fixed), zpp.model_output(x_t, t, fixed))


def test_guided_output_under_cfg_batches_both_branches(zpp):
    from gs_priors.samplers import GuidedDenoiser

    rgb = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(7))
    cond = zpp.encode_reference(rgb, generator=torch.Generator().manual_seed(8), fixed_noise=True)
    x_t = torch.randn(2, 4, 12, 8, generator=torch.Generator().manual_seed(9))
    t = torch.tensor([600, 600])
    with torch.no_grad():
        c = zpp.model_output(x_t, t, cond.expand_batch(2))
        u = zpp.model_output(x_t, t, zpp.null_condition(cond).expand_batch(2))
        guided = GuidedDenoiser(zpp, cond, 4.0, batch_size=2)(x_t, 600)
    assert torch.allclose(guided, u + 4.0 * (c - u), atol=1e-4)
    assert (c - u).abs().max() > 1e-3


def test_full_sample_of_six_views(zpp):
    from gs_priors.samplers import sample
    from gs_priors.zero123plus import untile_views

    cond = zpp.encode_reference(
        torch.rand(1, 4, 16, 16, generator=torch.Generator().manual_seed(10))
    )
    torch.manual_seed(0)
    result = sample(
        zpp, cond, zpp.latent_shape(1), steps=4, guidance_scale=4.0,
        generator=torch.Generator().manual_seed(11), timestep_spacing="trailing",
    )  # fmt: skip
    assert result.timesteps.tolist() == [999, 749, 499, 249]
    grid = zpp.decode_latents(result.latents)
    views = untile_views(grid)
    assert grid.shape == (1, 3, 24, 16) and views.shape == (1, 6, 3, 8, 8)
    assert torch.isfinite(views).all() and views.min() >= 0 and views.max() <= 1
    assert not torch.equal(result.latents, result.noise)


def test_tiling_order_and_cameras():
    from gs_priors.zero123plus import VIEWS, tile_views, untile_views, zero123plus_cameras

    views = torch.arange(6.0).view(1, 6, 1, 1, 1).expand(1, 6, 1, 2, 2)
    grid = tile_views(views)
    assert grid.shape == (1, 1, 6, 4)
    # Row-major: view k at row k // 2, column k % 2.
    assert grid[0, 0, ::2, ::2].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert torch.equal(untile_views(grid), views)
    with pytest.raises(ValidationError, match="views"):
        tile_views(torch.zeros(1, 5, 3, 2, 2))
    assert VIEWS["v1.1"] == ((30, 30), (90, -20), (150, 30), (210, -20), (270, 30), (330, -20))
    assert [e for _, e in VIEWS["v1.2"]] == [20, -10, 20, -10, 20, -10]
    cams = zero123plus_cameras("v1.2", input_azimuth_deg=10.0, radius=2.0)
    centres = torch.linalg.inv(cams.viewmats.double())[:, :3, 3]
    az = torch.rad2deg(torch.atan2(centres[:, 0], centres[:, 2])) % 360
    el = torch.rad2deg(torch.asin(centres[:, 1] / 2.0))
    assert torch.allclose(
        az, torch.tensor([40.0, 100, 160, 220, 280, 340], dtype=torch.float64), atol=1e-4
    )
    assert torch.allclose(
        el, torch.tensor([20.0, -10, 20, -10, 20, -10], dtype=torch.float64), atol=1e-4
    )
    assert cams.width == 320
    with pytest.raises(ValidationError, match="fov_deg"):
        zero123plus_cameras("v1.1")


def test_missing_files_fail_with_one_clear_error(zpp_dir, tmp_path):
    from gs_priors.zero123plus import Zero123PlusGuidance

    with pytest.raises(WeightsNotFoundError) as e:
        Zero123PlusGuidance.from_pretrained("gs3d-test/no-such-zero123plus")
    assert "gs3d-test/no-such-zero123plus" in str(e.value) and "hf download" in str(e.value)
    broken = tmp_path / "broken"
    shutil.copytree(zpp_dir, broken)
    shutil.rmtree(broken / "feature_extractor_vae")
    with pytest.raises(FileFormatError, match="feature_extractor_vae"):
        Zero123PlusGuidance.from_pretrained(broken)
    shutil.copytree(zpp_dir / "feature_extractor_vae", broken / "feature_extractor_vae")
    index = json.loads((broken / "model_index.json").read_text())
    del index["ramping_coefficients"]
    (broken / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(FileFormatError, match="model_index.json.*ramping_coefficients"):
        Zero123PlusGuidance.from_pretrained(broken)
    index["ramping_coefficients"] = [0.5] * 3
    (broken / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(FileFormatError, match="ramping_coefficients holds 3 values"):
        Zero123PlusGuidance.from_pretrained(broken)
    (broken / "vision_encoder" / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="vision_encoder"):
        Zero123PlusGuidance.from_pretrained(broken)


def test_students_carry_their_own_reference_attention(zpp_dir):
    from gs_priors import copy_student, lora_student
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE
    from gs_priors.zero123plus import Zero123PlusGuidance

    teacher = Zero123PlusGuidance.from_pretrained(zpp_dir, view_size=TINY_ZERO123PLUS_VIEW_SIZE)
    cond = teacher.encode_reference(torch.rand(1, 3, 12, 12), fixed_noise=True)
    x_t, t = torch.randn(1, 4, 12, 8), torch.tensor([300])
    student = copy_student(teacher)
    assert student.unet.reference_attention is not teacher.unet.reference_attention
    with torch.no_grad():
        base = teacher.model_output(x_t, t, cond)
        assert torch.allclose(student.model_output(x_t, t, cond), base, atol=1e-6)
        lora = lora_student(teacher, rank=2)
        for p in lora.trainable_parameters():
            p.add_(0.1)
        assert not torch.allclose(lora.model_output(x_t, t, cond), base, atol=1e-4)
        assert torch.allclose(teacher.model_output(x_t, t, cond), base, atol=1e-6)


def test_frozen_conditions_are_encoded_once_and_forgotten_on_new_weights(zpp_dir):
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE
    from gs_priors.zero123plus import Zero123PlusGuidance

    prior = Zero123PlusGuidance.from_pretrained(zpp_dir, view_size=TINY_ZERO123PLUS_VIEW_SIZE)
    encoded, texts = [], []
    encode, encode_text = prior.vae.encode, prior._encode_text

    def counting_encode(x, *args, **kwargs):
        encoded.append(float(x.abs().sum()))
        return encode(x, *args, **kwargs)

    def counting_text(prompt):
        texts.append(prompt)
        return encode_text(prompt)

    prior.vae.encode, prior._encode_text = counting_encode, counting_text
    rgba = torch.rand(1, 4, 12, 12, generator=torch.Generator().manual_seed(0))
    a = prior.encode_reference(rgba, generator=torch.Generator().manual_seed(3))
    b = prior.encode_reference(rgba, generator=torch.Generator().manual_seed(3))
    # the all-zero image is encoded once, the empty prompt once; the draws are unchanged
    assert sum(v == 0 for v in encoded) == 1 and len(encoded) == 3 and texts == [""]
    assert torch.equal(a.null_reference_latents, b.null_reference_latents)
    assert torch.equal(a.reference_latents, b.reference_latents)
    # new VAE weights: the zero image is encoded again, to different moments
    prior.vae.load_state_dict({k: v * 1.5 for k, v in prior.vae.state_dict().items()})
    c = prior.encode_reference(rgba, generator=torch.Generator().manual_seed(3))
    assert sum(v == 0 for v in encoded) == 2
    assert not torch.allclose(c.null_reference_latents, a.null_reference_latents)
    prior.text_encoder.load_state_dict(prior.text_encoder.state_dict())  # new text weights
    prior.encode_reference(rgba)
    assert texts == ["", ""]


def test_the_official_scheduler_is_what_v11_ships():
    from gs_priors.zero123plus import official_scheduler

    c = official_scheduler().config
    assert type(official_scheduler()).__name__ == "EulerAncestralDiscreteScheduler"
    assert (c.num_train_timesteps, c.beta_start, c.beta_end, c.beta_schedule) == (
        1000,
        0.00085,
        0.012,
        "linear",
    )
    assert (c.prediction_type, c.timestep_spacing, c.steps_offset) == (
        "v_prediction",
        "linspace",
        1,
    )
