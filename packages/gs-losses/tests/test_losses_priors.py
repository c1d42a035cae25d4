"""SDS / VSD over the diffusers-backed priors of gs-priors, on tiny random checkpoints loaded offline."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from gs_losses import SDS, VSD, SDSConfig, VSDConfig
from gs_losses.guidance import add_noise, guided_noise

# Nothing here may reach the hub: the tiny checkpoints are local, official ids must fail at once.
pytestmark = pytest.mark.usefixtures("offline_hub")


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    from gs_priors.tiny import save_tiny_stable_diffusion

    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def z123_dir(tmp_path_factory):
    from gs_priors.tiny import save_tiny_zero123

    return save_tiny_zero123(tmp_path_factory.mktemp("tiny-zero123"))


def test_stable_diffusion_loads_offline_and_guides_like_the_raw_unet(sd_dir):
    from gs_priors import StableDiffusionGuidance

    sd = StableDiffusionGuidance.from_pretrained(sd_dir)
    assert (
        sd.prediction_type == "epsilon" and sd.num_train_timesteps == 1000 and sd.image_size == 16
    )
    cond = sd.encode_text(["a red chair", "a wooden table"], negative_prompts="blurry")
    assert cond.embeddings.shape == (2, 16, 16)

    # Reference through the raw diffusers/transformers modules.
    tok = sd.tokenizer(
        ["a red chair", "a wooden table", "blurry", "blurry"],
        padding="max_length",
        max_length=16,
        return_tensors="pt",
    )
    with torch.no_grad():
        emb = sd.text_encoder(tok.input_ids)[0]
        g = torch.Generator().manual_seed(0)
        x_t = torch.randn(2, 4, 8, 8, generator=g)
        t = torch.tensor([100, 800])
        raw = sd.unet(
            torch.cat([x_t, x_t]),
            torch.cat([t, t]),
            encoder_hidden_states=torch.cat([emb[2:], emb[:2]]),
        ).sample
        e_u, e_c = raw.chunk(2)
        expected = e_u + 7.5 * (e_c - e_u)
        got = guided_noise(sd, x_t, t, cond, 7.5)
    assert torch.allclose(got, expected, atol=1e-5)

    # SDS forward + backward to the rendered image through the VAE encoder.
    images = torch.rand(2, 3, 24, 24, requires_grad=True)
    out = SDS(sd, SDSConfig()).compute(images, cond, generator=torch.Generator().manual_seed(1))
    out.loss.backward()
    assert out.latents.shape == (2, 4, 8, 8)
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert not any(p.grad is not None for p in sd.parameters())
    # Decoding gives images in [0, 1] at the model resolution.
    dec = sd.decode_latents(out.latents.detach())
    assert dec.shape == (2, 3, 16, 16) and dec.min() >= 0 and dec.max() <= 1


def test_v_prediction_checkpoint(tmp_path):
    from gs_priors import StableDiffusionGuidance
    from gs_priors.tiny import save_tiny_stable_diffusion

    sd = StableDiffusionGuidance.from_pretrained(
        save_tiny_stable_diffusion(tmp_path / "v", prediction_type="v_prediction")
    )
    assert sd.prediction_type == "v_prediction"
    cond = sd.encode_text("a chair")
    x_t, t = torch.randn(1, 4, 8, 8), torch.tensor([500])
    with torch.no_grad():
        v = sd.unet(x_t, t, encoder_hidden_states=cond.embeddings).sample
        ab = sd.alphas_cumprod[t]
        expected = (1 - ab).sqrt() * x_t + ab.sqrt() * v
        assert torch.allclose(guided_noise(sd, x_t, t, cond, 1.0), expected, atol=1e-5)


def test_zero123_conditioning_layout_and_sds(z123_dir, tmp_path):
    from gs_priors import Zero123Guidance
    from gs_priors.zero123 import zero123_camera

    z = Zero123Guidance.from_pretrained(z123_dir)
    assert z.variant == "zero123" and z.clip_size == 32 and z.image_size == 16
    rgba = torch.rand(1, 4, 20, 20)
    ref = z.encode_reference(rgba)
    assert ref.clip_embeds.shape == (1, 1, 16) and ref.image_latents.shape == (1, 4, 8, 8)
    # The reference latent is the unscaled posterior mode of the white-composited image.
    white = rgba[:, :3] * rgba[:, 3:] + (1 - rgba[:, 3:])
    with torch.no_grad():
        lat = z.vae.encode(
            2 * torch.nn.functional.interpolate(white, (16, 16), mode="bilinear") - 1
        ).latent_dist.mode()
    assert torch.allclose(ref.image_latents, lat, atol=1e-5)

    d_el, d_az, d_r = (
        torch.tensor([10.0, -20.0]),
        torch.tensor([45.0, 200.0]),
        torch.tensor([0.0, 0.2]),
    )
    cond = z.camera_condition(ref, d_el, d_az, d_r)
    with torch.no_grad():
        ctx = torch.cat(
            [ref.clip_embeds.expand(2, 1, 16), zero123_camera(d_el, d_az, d_r).unsqueeze(1)], -1
        )
        assert torch.allclose(cond.embeddings, z.camera_projection(ctx), atol=1e-6)
        # Conditional / unconditional U-Net inputs: image latent on channels, zeros when null.
        x_t, t = torch.randn(2, 4, 8, 8), torch.tensor([50, 500])
        e_c = z.unet(
            torch.cat([x_t, lat.expand(2, -1, -1, -1)], 1), t, encoder_hidden_states=cond.embeddings
        ).sample
        e_u = z.unet(
            torch.cat([x_t, torch.zeros(2, 4, 8, 8)], 1),
            t,
            encoder_hidden_states=torch.zeros_like(cond.embeddings),
        ).sample
        assert torch.allclose(guided_noise(z, x_t, t, cond, 5.0), e_u + 5 * (e_c - e_u), atol=1e-5)

    renders = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = SDS(z, SDSConfig(guidance_scale=5.0, timesteps={"t_range": (0.02, 0.98)}))(
        renders, cond
    )["sds"]
    loss.backward()
    assert torch.isfinite(renders.grad).all() and renders.grad.abs().sum() > 0

    stable_dir = tmp_path / "stable-zero123-tiny"
    shutil.copytree(z123_dir, stable_dir)
    assert Zero123Guidance.from_pretrained(stable_dir).variant == "stable_zero123"


def test_vsd_with_lora_student_alternating_updates(sd_dir):
    from gs_priors import StableDiffusionGuidance, lora_student

    teacher = StableDiffusionGuidance.from_pretrained(sd_dir)
    student = lora_student(teacher, rank=2)
    lora = student.trainable_parameters()
    assert lora and all(p.requires_grad for p in lora)
    assert {p for p in teacher.parameters() if p.requires_grad} == set(lora)
    cond = teacher.encode_text("a chair")
    x_t, t = torch.randn(1, 4, 8, 8), torch.tensor([300])
    with torch.no_grad():
        base = guided_noise(teacher, x_t, t, cond, 1.0)
        # LoRA starts at zero: the student equals the teacher.
        assert torch.allclose(guided_noise(student, x_t, t, cond, 1.0), base, atol=1e-6)

    # Equal CFG on both sides: the first VSD gradient is exactly zero.
    vsd = VSD(teacher, student, VSDConfig(guidance_scale=1.0, student_guidance_scale=1.0))
    image = torch.nn.Parameter(torch.rand(1, 3, 16, 16))
    first = vsd.compute(image, cond, generator=torch.Generator().manual_seed(0))
    assert first.grad.abs().max().item() < 1e-5

    gen_opt = torch.optim.Adam([image], lr=1e-2)
    stu_opt = torch.optim.Adam(lora, lr=1e-2)
    lora_before = [p.detach().clone() for p in lora]
    image_before = image.detach().clone()
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        # Generator step on the VSD gradient, then a student step on the updated sample.
        gen_opt.zero_grad()
        vsd.compute(image, cond, generator=g).loss.backward()
        gen_opt.step()
        stu_opt.zero_grad()
        vsd.student_loss(teacher.encode_images(image), cond, generator=g).backward()
        assert image.grad is not None and all(p.grad is not None for p in lora)
        stu_opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(lora_before, lora, strict=True))
    assert not torch.equal(image_before, image.detach())
    with torch.no_grad():
        # The teacher still predicts with the pretrained weights; the student has moved.
        assert torch.allclose(guided_noise(teacher, x_t, t, cond, 1.0), base, atol=1e-6)
        assert not torch.allclose(guided_noise(student, x_t, t, cond, 1.0), base, atol=1e-6)


def test_student_term_reaches_only_the_student(sd_dir):
    from gs_priors import StableDiffusionGuidance, copy_student

    teacher = StableDiffusionGuidance.from_pretrained(sd_dir)
    student = copy_student(teacher)
    assert student.unet is not teacher.unet and student.vae is teacher.vae
    assert all(p.requires_grad for p in student.unet.parameters())
    assert not any(p.requires_grad for p in teacher.unet.parameters())
    cond = teacher.encode_text("a lamp")
    vsd = VSD(
        teacher, student, VSDConfig(guidance_scale=4.0, student_timesteps={"t_range": (0.02, 0.98)})
    )
    image = torch.rand(2, 3, 16, 16, requires_grad=True)
    terms = vsd(image, cond, generator=torch.Generator().manual_seed(2))
    terms["student"].backward()
    assert image.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.unet.parameters())
    terms["vsd"].backward()
    assert image.grad is not None
    assert all(p.grad is None for p in teacher.unet.parameters())
    # x_t of the student loss comes from the same schedule as the teacher's.
    assert torch.equal(
        add_noise(torch.zeros(1), torch.ones(1), torch.tensor([999]), student.alphas_cumprod),
        add_noise(torch.zeros(1), torch.ones(1), torch.tensor([999]), teacher.alphas_cumprod),
    )


def test_multiview_sds_against_imagedream(tmp_path):
    """SDS over ImageDream: 2 objects x 4 views share one timestep per object."""
    from gs_priors.imagedream import ImageDreamGuidance
    from gs_priors.tiny import save_tiny_imagedream

    dream = ImageDreamGuidance.from_pretrained(save_tiny_imagedream(tmp_path / "id"))
    cond = dream.condition(dream.encode_reference(torch.rand(2, 4, 20, 20)))
    renders = torch.rand(2, 4, 3, 24, 24, requires_grad=True)
    out = SDS(dream, SDSConfig(guidance_scale=5.0, timesteps={"t_range": (0.02, 0.3)})).compute(
        renders, cond, generator=torch.Generator().manual_seed(0)
    )
    out.loss.backward()
    assert out.t.view(2, 4).unique(dim=1).shape[1] == 1
    assert torch.isfinite(renders.grad).all() and renders.grad.abs().sum() > 0
