"""CLIP encoder, CLIP similarity and the registered metric."""

import json

import pytest
import torch

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError
from gs_core.plugins.specs import MetricSpec
from gs_encoders import ClipEncoder, clip_embed_dim, clip_image_similarity, clip_text_similarity
from gs_encoders.clip_similarity import ENV_MODEL, ENV_PRETRAINED, clip_similarity_metric

# ViT-B-32 at its real size (151.28 M parameters in open_clip's model profile table), random.
B32_PARAMS = 151_277_313


@pytest.fixture(scope="module")
def b32():
    torch.manual_seed(0)
    return ClipEncoder("ViT-B-32", pretrained=None)


# A two-layer CLIP for the logic tests: the same code path as any open_clip model, a thousandth
# of the compute on CPU.
TINY = "gs3d-test-tiny-clip"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import open_clip

    cfg = tmp_path_factory.mktemp("clip-cfg") / f"{TINY}.json"
    cfg.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(cfg)
    torch.manual_seed(1)
    return ClipEncoder(TINY, pretrained=None)


@pytest.fixture(scope="module")
def tiny_dir(tiny, tmp_path_factory):
    return tiny.save_pretrained(tmp_path_factory.mktemp("clip") / "tiny")


def test_embedding_widths_without_building():
    # Compress3D / OpenShape work in OpenCLIP ViT-bigG-14's 1280-d space; ViT-L/14 is 768-d
    assert clip_embed_dim("ViT-bigG-14") == 1280
    assert clip_embed_dim("ViT-L-14") == 768
    with pytest.raises(ValidationError, match="model_name"):
        clip_embed_dim("ViT-Q-99")


def test_real_size_random_model(b32):
    assert sum(p.numel() for p in b32.parameters()) == B32_PARAMS
    assert b32.embed_dim == 512 and b32.image_size == (224, 224)
    assert not any(p.requires_grad for p in b32.parameters()) and not b32.training
    images = torch.rand(2, 3, 180, 260)
    with torch.no_grad():
        e = b32.encode_image(images)
        t = b32.encode_text(["a red chair", "a blue car"])
    assert e.shape == (2, 512) and t.shape == (2, 512)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(2))


def test_preprocessing_matches_clip_transform_by_hand(b32):
    # shortest side to 224 (bicubic, antialiased), centre crop, CLIP mean / std
    images = torch.rand(1, 3, 224, 320)
    x = b32.preprocess(images)
    crop = images[..., :, 48:272]
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (crop - mean) / std)
    with torch.no_grad():
        torch.testing.assert_close(
            b32.encode_image(images, normalized=False), b32.model.encode_image((crop - mean) / std)
        )


def test_batching_does_not_change_embeddings(tiny):
    images = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            tiny.encode_image(images, batch_size=2), tiny.encode_image(images)
        )


def test_gradients_reach_the_images(tiny):
    images = torch.rand(1, 3, 80, 80, requires_grad=True)
    tiny.encode_image(images, normalized=False).pow(2).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_similarities(tiny):
    b32 = tiny
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(4, 3, 64, 64, generator=g), torch.rand(4, 3, 64, 64, generator=g)
    same = clip_image_similarity(b32, a, a)
    torch.testing.assert_close(same, torch.ones(4), atol=1e-5, rtol=0)
    sim = clip_image_similarity(b32, a, b)
    ea, eb = b32.encode_image(a), b32.encode_image(b)
    ref = torch.nn.functional.cosine_similarity(ea, eb)
    torch.testing.assert_close(sim, ref, atol=1e-5, rtol=1e-5)
    # one reference image against every render
    torch.testing.assert_close(
        clip_image_similarity(b32, a, b[:1]), (ea @ eb[0]), atol=1e-5, rtol=1e-5
    )
    text = clip_text_similarity(b32, a, "a photo of a chair")
    torch.testing.assert_close(
        text, ea @ b32.encode_text(["a photo of a chair"])[0], atol=1e-5, rtol=1e-5
    )
    with pytest.raises(ValidationError, match="texts"):
        clip_text_similarity(b32, a, ["x", "y"])


def test_checkpoint_round_trip(tiny, tiny_dir):
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = tiny.encode_image(images)
        for source in (tiny_dir, tiny_dir / "open_clip_model.safetensors"):
            loaded = ClipEncoder(TINY, pretrained=source)
            torch.testing.assert_close(loaded.encode_image(images), ref)
    with pytest.raises(FileFormatError, match=TINY):
        ClipEncoder("ViT-B-16", pretrained=tiny_dir)
    with pytest.raises(FileFormatError, match="do not fit|not loadable"):
        ClipEncoder("ViT-B-16", pretrained=tiny_dir / "open_clip_model.safetensors")


def test_ddp_prefixed_torch_checkpoint_loads(tiny, tmp_path):
    sd = {f"module.{k}": v for k, v in tiny.model.state_dict().items()}
    torch.save({"epoch": 3, "state_dict": sd}, tmp_path / "epoch_3.pt")
    loaded = ClipEncoder(TINY, pretrained=tmp_path / "epoch_3.pt")
    torch.testing.assert_close(loaded.model.visual.proj, tiny.model.visual.proj)


def test_missing_weights_say_what_and_how(offline_hub):
    with pytest.raises(WeightsNotFoundError) as e:
        ClipEncoder("ViT-B-32", pretrained="openai")
    msg = str(e.value)
    assert "open_clip_model.safetensors" in msg and "huggingface-cli download" in msg
    assert "quick_gelu=True" in msg  # OpenAI weights need it when passed as a bare file
    with pytest.raises(WeightsNotFoundError, match="laion2b_s34b_b79k"):
        ClipEncoder("ViT-B-32", pretrained="no-such-tag")
    with pytest.raises(ValidationError, match="model_name"):
        ClipEncoder("ViT-Q-99", pretrained=None)


def test_metric_factory_needs_real_weights(offline_hub, monkeypatch):
    monkeypatch.delenv(ENV_MODEL, raising=False)
    monkeypatch.delenv(ENV_PRETRAINED, raising=False)
    with pytest.raises(WeightsNotFoundError, match="vit_large_patch14_clip_224.openai"):
        clip_similarity_metric("cpu")
    monkeypatch.setenv(ENV_PRETRAINED, "none")
    with pytest.raises(ValidationError, match=ENV_PRETRAINED):
        clip_similarity_metric("cpu")


def test_metric_with_local_weights(tiny_dir, monkeypatch):
    monkeypatch.setenv(ENV_MODEL, TINY)
    monkeypatch.setenv(ENV_PRETRAINED, str(tiny_dir))
    fn = clip_similarity_metric(torch.device("cpu"))
    g = torch.Generator().manual_seed(2)
    pred, target = torch.rand(3, 48, 48, 3, generator=g), torch.rand(3, 64, 64, 3, generator=g)
    out = fn(pred, target)
    assert out.shape == (3,)
    torch.testing.assert_close(fn(pred, pred), torch.ones(3), atol=1e-5, rtol=0)
    assert fn(pred, target[:1]).shape == (3,)  # render-input: one input image
    with pytest.raises(ValidationError, match="pred"):
        fn(pred.permute(0, 3, 1, 2), target)


def test_plugin_registers_the_metric():
    from gs_encoders import plugin

    specs = []
    plugin.gs3d_register_metrics(register=specs.append)
    (spec,) = specs
    assert isinstance(spec, MetricSpec) and spec.name == "clip_similarity"
    assert spec.higher_is_better and set(spec.pairs) == {"render-gt", "render-input"}
    assert spec.factory is clip_similarity_metric


def test_metric_default_weights_match_open_clip_table():
    """The metric resolves its default weights without open_clip: the repo, activation and
    preprocessing it assumes must be the ones open_clip's own table gives the tag."""
    import open_clip
    from open_clip.transform import PreprocessCfg

    from gs_encoders.clip_similarity import DEFAULT_HUB_REPO, DEFAULT_MODEL, DEFAULT_PRETRAINED

    cfg = open_clip.get_pretrained_cfg(DEFAULT_MODEL, DEFAULT_PRETRAINED)
    assert cfg["hf_hub"].rstrip("/") == DEFAULT_HUB_REPO and cfg["quick_gelu"] is True
    default = PreprocessCfg()
    assert tuple(cfg["mean"]) == tuple(default.mean) and tuple(cfg["std"]) == tuple(default.std)
    assert (cfg["interpolation"], cfg["resize_mode"]) == (
        default.interpolation,
        default.resize_mode,
    )


def test_metric_without_weights_fails_before_importing_open_clip(tmp_path):
    # open_clip's import alone takes 10-20 s (torchvision): a machine without the weights must
    # hear that the metric is unavailable without paying for it, and without hub retries.
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gs_core.errors import WeightsNotFoundError\n"
        "from gs_encoders.clip_similarity import clip_similarity_metric\n"
        "try:\n"
        "    clip_similarity_metric('cpu')\n"
        "except WeightsNotFoundError as e:\n"
        "    print('unavailable:', e)\n"
        "print('open_clip imported:', 'open_clip' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GS3D_CLIP_", "HF_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert "unavailable:" in r.stdout and "GS3D_CLIP_PRETRAINED" in r.stdout
    assert "open_clip imported: False" in r.stdout
