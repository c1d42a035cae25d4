"""DINOv2 encoder: architecture fidelity at real sizes, input sizes, weights, bf16."""

import copy

import pytest
import torch
import torch.nn.functional as F

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError
from gs_encoders import DINOV2_VARIANTS, DinoV2Encoder
from gs_encoders.dinov2 import official_hub_id
from gs_encoders.image_preprocessing import snap_to_multiple

# Parameter counts (millions, one decimal) from the model cards of the released weights,
# timm/vit_{small,base,large,giant}_patch14[_reg4]_dinov2.lvd142m ("Params (M)"); the DINOv2
# paper's ViT-S/B/L/g are 21M / 86M / 300M / 1.1B.
MODEL_CARD_PARAMS_M = {
    "small": 22.1,
    "base": 86.6,
    "large": 304.4,
    "giant": 1136.5,
    "small-reg4": 22.1,
    "base-reg4": 86.6,
    "large-reg4": 304.4,
    "giant-reg4": 1136.5,
}
EMBED_DIM = {"small": 384, "base": 768, "large": 1024, "giant": 1536}


@pytest.fixture(scope="module")
def base_256():
    torch.manual_seed(0)
    return DinoV2Encoder("base", pretrained=None, image_size=256)


@pytest.fixture(scope="module")
def small_56():
    torch.manual_seed(1)
    return DinoV2Encoder("small", pretrained=None, image_size=56)


@pytest.fixture(scope="module")
def small_reg4_112():
    torch.manual_seed(2)
    return DinoV2Encoder("small-reg4", pretrained=None, image_size=112)


@pytest.mark.parametrize("variant", sorted(DINOV2_VARIANTS))
def test_variant_sizes_match_the_model_cards(variant):
    import timm

    with torch.device("meta"):  # counts without allocating the giant's 4.5 GB
        model = timm.create_model(
            DINOV2_VARIANTS[variant], pretrained=False, num_classes=0, dynamic_img_size=True
        )
    n = sum(p.numel() for p in model.parameters())
    assert round(n / 1e6, 1) == MODEL_CARD_PARAMS_M[variant]
    assert model.embed_dim == EMBED_DIM[variant.split("-")[0]]
    assert model.num_prefix_tokens == (5 if variant.endswith("reg4") else 1)


def test_base_at_agg_resolution(base_256):
    enc = base_256
    assert sum(p.numel() for p in enc.parameters()) == 86_579_712  # 86.6 M
    # AGG: DINOv2-base at 256x256; 256 is snapped to 252 = 18 * 14
    assert enc.image_size == (252, 252) and enc.grid_size == (18, 18) and enc.num_patches == 324
    out = enc(torch.rand(2, 3, 256, 256))
    assert out.cls.shape == (2, 1, 768)
    assert out.patches.shape == (2, 324, 768)
    assert out.registers.shape == (2, 0, 768)
    assert out.grid == (18, 18) and out.patch_map().shape == (2, 768, 18, 18)


def test_tokens_equal_timm_on_a_normalised_multiple_of_14(base_256):
    # independent path: ImageNet normalisation by hand, timm's forward_features directly
    x = torch.rand(1, 3, 252, 252)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = base_256.model.forward_features((x - mean) / std)
        out = base_256(x)
    torch.testing.assert_close(out.cls, ref[:, :1])
    torch.testing.assert_close(out.patches, ref[:, 1:])


def test_other_input_sizes_are_resized(base_256):
    with torch.no_grad():
        out = base_256(torch.rand(1, 3, 300, 200))
    assert out.patches.shape == (1, 324, 768)
    assert snap_to_multiple((224, 300), 14) == (224, 294)
    assert snap_to_multiple(7, 14) == (14, 14) and snap_to_multiple(3, 14) == (14, 14)


def test_registers_are_split_from_patches(small_reg4_112):
    enc = small_reg4_112
    with torch.no_grad():
        out = enc(torch.rand(2, 3, 112, 112))
    assert out.cls.shape == (2, 1, 384) and out.registers.shape == (2, 4, 384)
    assert out.patches.shape == (2, 64, 384)


def test_frozen_by_default_but_differentiable_wrt_images(small_56):
    enc = small_56
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training  # frozen encoders stay in eval mode
    x = torch.rand(1, 3, 56, 56, requires_grad=True)
    (enc(x).cls ** 2).sum().backward()  # not .sum(): a LayerNorm output sums to ~0
    assert x.grad is not None and x.grad.abs().sum() > 0
    trainable = DinoV2Encoder("small", pretrained=None, image_size=56, trainable=True)
    assert all(p.requires_grad for p in trainable.parameters()) and trainable.training


def test_bf16_weights_and_autocast_agree_with_float32(small_56):
    enc = small_56
    x = torch.rand(2, 3, 56, 56)
    with torch.no_grad():
        ref = enc(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = enc(x)
        half = copy.deepcopy(enc).to(torch.bfloat16)(x)
    assert half.patches.dtype == torch.bfloat16
    for out in (auto, half):
        assert F.cosine_similarity(out.patches.float(), ref.patches, dim=-1).min() > 0.98
        assert torch.isfinite(out.cls.float()).all()


def test_local_checkpoint_round_trip(tmp_path, small_56):
    enc = small_56
    enc.save_pretrained(tmp_path / "dino")
    x = torch.rand(1, 3, 56, 56)
    for source in (tmp_path / "dino", tmp_path / "dino" / "model.safetensors"):
        loaded = DinoV2Encoder("small", pretrained=source, image_size=56)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x).patches, enc(x).patches)


def test_original_release_layout_and_ddp_prefix_load(tmp_path, small_reg4_112):
    # facebookresearch/dinov2 checkpoints carry mask_token and registers as register_tokens with
    # the class position inside pos_embed; timm's converter maps them, and a DDP prefix is dropped
    enc = small_reg4_112
    sd = {k: v.clone() for k, v in enc.model.state_dict().items()}
    original = {k: v for k, v in sd.items() if k not in ("reg_token", "cls_token", "pos_embed")}
    original["mask_token"] = torch.zeros(1, 384)
    original["register_tokens"] = sd["reg_token"]
    original["pos_embed"] = torch.cat([torch.zeros(1, 1, 384), sd["pos_embed"]], dim=1)
    original["cls_token"] = sd["cls_token"]
    torch.save({"model": {f"module.{k}": v for k, v in original.items()}}, tmp_path / "dinov2.pth")
    loaded = DinoV2Encoder("small-reg4", pretrained=tmp_path / "dinov2.pth", image_size=112)
    x = torch.rand(1, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).patches, enc(x).patches)


def test_deferred_weights_load_on_first_use_in_place(tmp_path, small_56):
    small_56.save_pretrained(tmp_path / "dino")
    lazy = DinoV2Encoder("small", pretrained=tmp_path / "dino", image_size=56, defer=True)
    assert lazy.pending_weights == str(tmp_path / "dino")
    lazy.to(torch.bfloat16)  # the module's dtype (and device) survive the deferred load
    x = torch.rand(1, 3, 56, 56)
    with torch.no_grad():
        out = lazy(x).patches
    assert lazy.pending_weights is None and out.dtype == torch.bfloat16
    assert lazy.model.patch_embed.proj.weight.dtype == torch.bfloat16
    torch.testing.assert_close(
        lazy.model.patch_embed.proj.weight,
        small_56.model.patch_embed.proj.weight.to(torch.bfloat16),
    )


def test_deferred_weights_are_superseded_by_a_checkpoint(offline_hub, small_56):
    lazy = DinoV2Encoder("small", pretrained="official", image_size=56, defer=True)  # no fetch yet
    with pytest.raises(WeightsNotFoundError, match=official_hub_id("small")):
        lazy.ensure_weights()
    wrapper = torch.nn.ModuleDict({"dino": lazy})
    wrapper.load_state_dict({f"dino.{k}": v for k, v in small_56.state_dict().items()})
    assert lazy.pending_weights is None  # the checkpoint held the encoder: nothing to fetch
    x = torch.rand(1, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(lazy(x).patches, small_56(x).patches)


def test_weights_of_another_variant_are_refused(tmp_path, small_56):
    small_56.save_pretrained(tmp_path / "s")
    with pytest.raises(FileFormatError):
        DinoV2Encoder("base", pretrained=tmp_path / "s", image_size=28)


def test_official_weights_missing_offline_say_what_and_how(offline_hub):
    with pytest.raises(WeightsNotFoundError) as e:
        DinoV2Encoder("small", image_size=28)  # pretrained="official" by default
    msg = str(e.value)
    assert official_hub_id("small") in msg and "model.safetensors" in msg
    assert "huggingface-cli download" in msg
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        DinoV2Encoder("small", pretrained=offline_hub / "nowhere.safetensors", image_size=28)


def test_bad_arguments(small_56):
    with pytest.raises(ValidationError, match="variant"):
        DinoV2Encoder("huge", pretrained=None)
    with pytest.raises(ValidationError, match="images"):
        small_56(torch.rand(1, 56, 56, 3))
