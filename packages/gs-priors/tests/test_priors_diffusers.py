"""Diffusers-backed priors on tiny random checkpoints saved with save_pretrained, loaded offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from gs_core.errors import FileFormatError, WeightsNotFoundError

# Nothing here may reach the hub: the tiny checkpoints are local, official ids must fail at once.
pytestmark = pytest.mark.usefixtures("offline_hub")


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    from gs_priors.tiny import save_tiny_stable_diffusion

    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


def test_import_is_light():
    code = (
        "import sys, gs_priors\n"
        "heavy = [m for m in ('diffusers', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert gs_priors.DiffusionPrior and gs_priors.Condition\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stable_diffusion_conditions_its_unet_as_diffusers_does(sd_dir):
    from gs_priors import DiffusionPrior, StableDiffusionGuidance, TextCondition

    sd = StableDiffusionGuidance.from_pretrained(sd_dir)
    assert isinstance(sd, DiffusionPrior)
    assert (sd.prediction_type, sd.num_train_timesteps, sd.image_size) == ("epsilon", 1000, 16)
    cond = sd.encode_text(["a red chair", "a wooden table"], negative_prompts="blurry")
    assert isinstance(cond, TextCondition) and cond.embeddings.shape == (2, 16, 16)
    tok = sd.tokenizer(
        ["a red chair", "a wooden table", "blurry", "blurry"],
        padding="max_length",
        max_length=16,
        return_tensors="pt",
    )
    x_t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([100, 800])
    with torch.no_grad():
        emb = sd.text_encoder(tok.input_ids)[0]
        assert torch.allclose(cond.embeddings, emb[:2], atol=1e-6)
        # The unconditional branch of classifier-free guidance is the negative prompt.
        null = sd.null_condition(cond)
        assert torch.allclose(null.embeddings, emb[2:], atol=1e-6)
        raw = sd.unet(x_t, t, encoder_hidden_states=emb[:2]).sample
        assert torch.allclose(sd.model_output(x_t, t, cond), raw, atol=1e-5)
    images = torch.rand(2, 3, 24, 24, requires_grad=True)
    latents = sd.encode_images(images)
    assert latents.shape == (2, 4, 8, 8) and latents.dtype == torch.float32
    latents.sum().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert not any(p.grad is not None for p in sd.parameters())
    dec = sd.decode_latents(latents.detach())
    assert dec.shape == (2, 3, 16, 16) and dec.min() >= 0 and dec.max() <= 1


def test_v_prediction_checkpoint(tmp_path):
    from gs_priors import StableDiffusionGuidance
    from gs_priors.tiny import save_tiny_stable_diffusion

    sd = StableDiffusionGuidance.from_pretrained(
        save_tiny_stable_diffusion(tmp_path / "v", prediction_type="v_prediction")
    )
    assert sd.prediction_type == "v_prediction"


def test_missing_models_fail_with_one_clear_error(sd_dir, tmp_path):
    from gs_priors import StableDiffusionGuidance, Zero123Guidance

    with pytest.raises(WeightsNotFoundError) as e:
        StableDiffusionGuidance.from_pretrained("gs3d-test/no-such-model")
    msg = str(e.value)
    assert "gs3d-test/no-such-model" in msg and "hf download" in msg
    with pytest.raises(WeightsNotFoundError) as e:
        Zero123Guidance.from_pretrained(str(tmp_path / "missing"))
    assert str(tmp_path / "missing") in str(e.value) and "diffusers model" in str(e.value)
    broken = tmp_path / "broken"
    shutil.copytree(sd_dir, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(FileFormatError, match="unet"):
        StableDiffusionGuidance.from_pretrained(broken)
    shutil.copytree(sd_dir / "unet", broken / "unet")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="unet"):
        StableDiffusionGuidance.from_pretrained(broken)


def test_camera_projection_matches_zero123_layout():
    from gs_priors.zero123 import camera_projection_class

    proj = camera_projection_class()()
    assert isinstance(proj.proj, torch.nn.Linear)
    assert (proj.proj.in_features, proj.proj.out_features) == (772, 768)
    assert set(proj.state_dict()) == {"proj.weight", "proj.bias"}


def test_zero123_camera_embedding():
    import math

    from gs_priors.zero123 import zero123_camera

    cam = zero123_camera(
        torch.tensor([30.0, -15.0]), torch.tensor([90.0, 180.0]), torch.tensor([0.1, 0.0])
    )
    expected = torch.tensor(
        [[-math.pi / 6, 1.0, 0.0, 0.1], [math.pi / 12, 0.0, -1.0, 0.0]],
    )
    assert torch.allclose(cam, expected, atol=1e-6)
    stable = zero123_camera(
        torch.tensor([30.0]), torch.tensor([90.0]), 0.0, "stable_zero123", reference_elevation=20.0
    )
    assert stable[0, 3].item() == pytest.approx(math.radians(70.0))


def test_hub_ids_go_through_the_core_resolver_with_a_bin_fallback(sd_dir, tmp_path, monkeypatch):
    import gs_priors.model_dir as model_dir
    from gs_priors import StableDiffusionGuidance

    # A hub snapshot whose U-Net exists only as *.bin: the first (safetensors) fetch lacks it.
    snapshot = tmp_path / "snapshot"
    shutil.copytree(sd_dir, snapshot)
    unet_weights = snapshot / "unet" / "diffusion_pytorch_model.safetensors"
    bin_copy = tmp_path / "diffusion_pytorch_model.safetensors"
    shutil.move(unet_weights, bin_copy)
    calls = []

    def fake_resolve(spec, *, allow_patterns=None, ignore_patterns=None, what="", **_):
        calls.append((spec, list(allow_patterns)))
        if allow_patterns == ["unet/*.bin"]:
            # Stands in for the *.bin download; the loader reads what is there.
            shutil.copy(bin_copy, unet_weights)
        return snapshot

    monkeypatch.setattr(model_dir, "resolve_pretrained", fake_resolve)
    sd = StableDiffusionGuidance.from_pretrained("hf://gs3d-test/tiny-sd@v1")
    assert sd.image_size == 16
    assert [c[0] for c in calls] == ["hf://gs3d-test/tiny-sd@v1"] * 2
    first = calls[0][1]
    assert "model_index.json" in first and "unet/*.safetensors" in first
    assert "text_encoder/*.json" in first and calls[1][1] == ["unet/*.bin"]


def test_students_share_the_teacher_and_train_only_their_own_weights(sd_dir):
    from gs_priors import DiffusionPrior, StableDiffusionGuidance, copy_student, lora_student

    teacher = StableDiffusionGuidance.from_pretrained(sd_dir)
    student = lora_student(teacher, rank=2)
    assert isinstance(student, DiffusionPrior)
    lora = student.trainable_parameters()
    assert lora and all(p.requires_grad and p.dtype == torch.float32 for p in lora)
    assert {p for p in teacher.parameters() if p.requires_grad} == set(lora)
    cond = teacher.encode_text("a chair")
    x_t, t = torch.randn(1, 4, 8, 8), torch.tensor([300])
    with torch.no_grad():
        # LoRA starts at zero: the student equals the teacher.
        base = teacher.model_output(x_t, t, cond)
        assert torch.allclose(student.model_output(x_t, t, cond), base, atol=1e-6)
        for p in lora:
            p.add_(0.1)
        assert not torch.allclose(student.model_output(x_t, t, cond), base, atol=1e-6)
        # The teacher keeps predicting with the adapter disabled.
        assert torch.allclose(teacher.model_output(x_t, t, cond), base, atol=1e-6)

    fresh = StableDiffusionGuidance.from_pretrained(sd_dir)
    copy = copy_student(fresh)
    assert copy.unet is not fresh.unet and copy.vae is fresh.vae
    assert all(p.requires_grad for p in copy.unet.parameters())
    assert not any(p.requires_grad for p in fresh.unet.parameters())
    assert torch.equal(copy.alphas_cumprod, fresh.alphas_cumprod)


def test_tiny_checkpoints_have_the_real_layout(tmp_path):
    from gs_priors.stable_diffusion import COMPONENTS as SD_COMPONENTS
    from gs_priors.tiny import save_tiny_stable_diffusion, save_tiny_zero123
    from gs_priors.zero123 import COMPONENTS as Z123_COMPONENTS

    for save, components in (
        (save_tiny_stable_diffusion, SD_COMPONENTS),
        (save_tiny_zero123, Z123_COMPONENTS),
    ):
        directory = Path(save(tmp_path / save.__name__))
        assert (directory / "model_index.json").is_file()
        assert all((directory / c).is_dir() for c in components)
