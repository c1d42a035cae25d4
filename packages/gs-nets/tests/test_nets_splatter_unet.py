"""LGM splatter UNet: official parameter names / counts, forward shapes, activations, loading."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from gs_core import Cameras, Gaussians
from gs_core.errors import FileFormatError, WeightsNotFoundError
from gs_nets import SplatterUNet, SplatterUNetConfig, splatter_activations, splatter_unet_input
from gs_nets.splatter_unet import IMAGENET_MEAN, IMAGENET_STD, params_to_gaussians

# --------------------------------------------------------------------------- official layout
# Expected state dict of the official LGM model, written from 3DTopia/LGM core/unet.py
# (UNet, DownBlock, MidBlock, UpBlock, ResnetBlock, MVAttention), core/attention.py (DINOv2
# MemEffAttention: qkv Linear without bias, proj Linear with bias), core/models.py (LGM wraps the
# UNet(9, 14) as `self.unet` and adds `self.conv = nn.Conv2d(14, 14, 1)`) and core/options.py
# (the 'small' and 'big' configs). It follows the official constructor, including its skip
# channel rule `cskip = down_channels[max(-2 - i, -len(down_channels))]` for the last layer of
# up block i and `out_channels` for the others, independently of gs_nets' skip-stack bookkeeping.


def official_lgm_shapes(down, down_attn, up, up_attn, layers=2, cin=9, cout=14, mid_attn=True):
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(p, ci, co, k):
        shapes[f"{p}.weight"] = (co, ci, k, k)
        shapes[f"{p}.bias"] = (co,)

    def gn(p, c):
        shapes[f"{p}.weight"] = (c,)
        shapes[f"{p}.bias"] = (c,)

    def resnet(p, ci, co):
        gn(f"{p}.norm1", ci)
        conv(f"{p}.conv1", ci, co, 3)
        gn(f"{p}.norm2", co)
        conv(f"{p}.conv2", co, co, 3)
        if ci != co:
            conv(f"{p}.shortcut", ci, co, 1)

    def mvattn(p, c):
        gn(f"{p}.norm", c)
        shapes[f"{p}.attn.qkv.weight"] = (3 * c, c)
        shapes[f"{p}.attn.proj.weight"] = (c, c)
        shapes[f"{p}.attn.proj.bias"] = (c,)

    conv("unet.conv_in", cin, down[0], 3)
    c = down[0]
    for i, co in enumerate(down):
        ci, c = c, co
        for j in range(layers):
            resnet(f"unet.down_blocks.{i}.nets.{j}", ci if j == 0 else c, c)
            if down_attn[i]:
                mvattn(f"unet.down_blocks.{i}.attns.{j}", c)
        if i != len(down) - 1:
            conv(f"unet.down_blocks.{i}.downsample", c, c, 3)
    resnet("unet.mid_block.nets.0", down[-1], down[-1])
    resnet("unet.mid_block.nets.1", down[-1], down[-1])
    if mid_attn:
        mvattn("unet.mid_block.attns.0", down[-1])
    c = up[0]
    for i, co in enumerate(up):
        ci, c = c, co
        cskip = down[max(-2 - i, -len(down))]
        for j in range(layers + 1):
            skip = cskip if j == layers else c
            resnet(f"unet.up_blocks.{i}.nets.{j}", (ci if j == 0 else c) + skip, c)
            if up_attn[i]:
                mvattn(f"unet.up_blocks.{i}.attns.{j}", c)
        if i != len(up) - 1:
            conv(f"unet.up_blocks.{i}.upsample", c, c, 3)
    gn("unet.norm_out", up[-1])
    conv("unet.conv_out", up[-1], cout, 3)
    conv("conv", 14, 14, 1)
    return shapes


DOWN = (64, 128, 256, 512, 1024, 1024)
DOWN_ATTN = (False, False, False, True, True, True)
OFFICIAL = {
    "small": official_lgm_shapes(
        DOWN, DOWN_ATTN, (1024, 1024, 512, 256), (True, True, True, False)
    ),
    "big": official_lgm_shapes(
        DOWN, DOWN_ATTN, (1024, 1024, 512, 256, 128), (True, True, True, False, False)
    ),
}
# Totals of the layouts above (parameters, tensors); fixed here so a change of either side shows.
OFFICIAL_TOTALS = {"small": (412_958_240, 344), "big": (415_042_848, 376)}


def _meta_model(preset: str) -> SplatterUNet:
    with torch.device("meta"):
        return SplatterUNet(SplatterUNetConfig.preset(preset))


@pytest.mark.parametrize("preset", ["small", "big"])
def test_lgm_state_dict_matches_official(preset):
    model = _meta_model(preset)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = OFFICIAL[preset]
    assert sorted(set(official) - set(ours)) == []
    assert sorted(set(ours) - set(official)) == []
    assert {k: s for k, s in ours.items() if official[k] != s} == {}
    n_params = sum(math.prod(s) for s in official.values())
    assert (n_params, len(official)) == OFFICIAL_TOTALS[preset]
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_TOTALS[preset][0]


def test_lgm_spot_keys():
    keys = _meta_model("big").state_dict()
    assert tuple(keys["unet.down_blocks.3.attns.0.attn.qkv.weight"].shape) == (1536, 512)
    assert "unet.down_blocks.3.attns.0.attn.qkv.bias" not in keys
    assert tuple(keys["unet.up_blocks.4.nets.2.conv1.weight"].shape) == (128, 128 + 64, 3, 3)
    assert tuple(keys["unet.up_blocks.0.nets.0.shortcut.weight"].shape) == (1024, 2048, 1, 1)
    assert tuple(keys["conv.weight"].shape) == (14, 14, 1, 1)
    assert not any(".attns." in k for k in keys if k.startswith("unet.down_blocks.2."))


def test_presets_splat_sizes():
    assert SplatterUNetConfig.preset("small").splat_size == 64
    assert SplatterUNetConfig.preset("big").splat_size == 128
    # 4 views -> 16,384 / 65,536 Gaussians
    assert 4 * 64**2 == 16_384 and 4 * 128**2 == 65_536


# --------------------------------------------------------------------------- behaviour (tiny)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return SplatterUNet(SplatterUNetConfig.preset("tiny")).eval()


def test_forward_shapes_and_gradients(tiny):
    views = torch.randn(2, 4, 9, 32, 32, requires_grad=True)
    raw = tiny(views)
    assert raw.shape == (2, 4, 14, 16, 16)
    raw.square().mean().backward()
    assert views.grad is not None and torch.isfinite(views.grad).all()
    assert all(p.grad is not None for p in tiny.parameters())
    tiny.zero_grad()


def test_views_interact_only_through_attention(tiny):
    # Multi-view attention mixes the views of one object but never two objects of a batch.
    torch.manual_seed(1)
    views = torch.randn(2, 4, 9, 32, 32)
    with torch.no_grad():
        base = tiny(views)
        changed = views.clone()
        changed[0, 3] += 1.0
        out = tiny(changed)
    assert not torch.allclose(out[0, 0], base[0, 0])  # other view of the same object moved
    torch.testing.assert_close(out[1], base[1])  # the other object did not


def test_activations_formula():
    raw = torch.randn(5, 14) * 3
    act = splatter_activations(raw)
    torch.testing.assert_close(act[:, 0:3], raw[:, 0:3].clamp(-1, 1))
    torch.testing.assert_close(act[:, 3], 1 / (1 + torch.exp(-raw[:, 3])))
    torch.testing.assert_close(act[:, 4:7], 0.1 * torch.log1p(torch.exp(raw[:, 4:7])))
    torch.testing.assert_close(act[:, 7:11], raw[:, 7:11] / raw[:, 7:11].norm(dim=-1, keepdim=True))
    torch.testing.assert_close(act[:, 11:14], (torch.tanh(raw[:, 11:14]) + 1) / 2)


def test_gaussian_params_and_gaussians(tiny):
    views = torch.randn(1, 4, 9, 32, 32)
    with torch.no_grad():
        raw = tiny(views)
        params = tiny.gaussian_params(views)
        g = tiny.gaussians(views)
    assert params.shape == (1, 4 * 16 * 16, 14)
    # pixel (v, y, x) -> Gaussian v*S*S + y*S + x (LGM's permute(0, 1, 3, 4, 2))
    torch.testing.assert_close(
        params[0, 1 * 256 + 3 * 16 + 5], splatter_activations(raw[0, 1, :, 3, 5])
    )
    assert isinstance(g, Gaussians) and g.num_gaussians == 1024 and g.batch_shape == (1,)
    g.validate()  # values valid by construction
    torch.testing.assert_close(g.colors, params[..., 11:14].clamp(0, 1))
    torch.testing.assert_close(params_to_gaussians(params).opacities, params[..., 3])


def test_input_builder():
    cams = Cameras.orbit([0, 90, 180, 270], 0.0, radius=1.5, width=16, height=16)
    images = torch.rand(2, 4, 3, 16, 16)
    x = splatter_unet_input(images, cams)
    assert x.shape == (2, 4, 9, 16, 16)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(x[1, 2, :3], (images[1, 2] - mean) / std)
    torch.testing.assert_close(x[1, 2, 3:], cams.plucker_rays()[2])
    with pytest.raises(ValueError, match="cameras"):
        splatter_unet_input(images[:, :3], cams)


def test_bad_input_shape(tiny):
    with pytest.raises(ValueError, match="views"):
        tiny(torch.randn(1, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="views"):
        tiny(torch.randn(1, 4, 9, 30, 30))


def test_lgm_checkpoint_roundtrip(tmp_path, tiny):
    # An official-layout checkpoint (flat keys, fp16, as model_fp16_fixrot.safetensors).
    state = {k: v.half().contiguous() for k, v in tiny.state_dict().items()}
    f = tmp_path / "model_fp16_fixrot.safetensors"
    save_file(state, str(f))
    for src in (f, tmp_path):
        m = SplatterUNet.from_lgm_checkpoint(src, preset="tiny")
        for k, v in m.state_dict().items():
            assert v.dtype == torch.float32
            torch.testing.assert_close(v, state[k].float())
    del state["conv.bias"]
    save_file(state, str(tmp_path / "broken.safetensors"))
    with pytest.raises(FileFormatError, match="conv.bias"):
        SplatterUNet.from_lgm_checkpoint(tmp_path / "broken.safetensors", preset="tiny")


def test_lgm_checkpoint_missing(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="model_fp16_fixrot.safetensors"):
        SplatterUNet.from_lgm_checkpoint(tmp_path, preset="tiny")
    with pytest.raises(WeightsNotFoundError, match="huggingface-cli download ashawkey/LGM"):
        SplatterUNet.from_lgm_checkpoint(tmp_path / "nope.safetensors", preset="tiny")


def test_save_load_pretrained(tmp_path, tiny):
    tiny.save_pretrained(tmp_path / "ckpt")
    m = SplatterUNet.from_pretrained(tmp_path / "ckpt")
    assert m.config == tiny.config
    x = torch.randn(1, 4, 9, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), tiny(x))


def test_rays_match_lgm_convention():
    # LGM's default input rays (core/models.py prepare_default_rays): kiui orbit cameras at
    # elevation 0, azimuths 0/90/180/270, radius 1.5, OpenGL look-at (z backward, right =
    # up x z), pixel-centre directions ((x - cx + 0.5) / f, -(y - cy + 0.5) / f, -1), f from the
    # vertical fovy 49.1. Cameras.orbit must give the same Plücker rays.
    size, fovy, radius = 16, 49.1, 1.5
    cams = Cameras.orbit(
        [0, 90, 180, 270], 0.0, radius=radius, fov_deg=fovy, width=size, height=size
    )
    got = splatter_unet_input(torch.zeros(1, 4, 3, size, size), cams, normalize=False)[0, :, 3:]
    f = size * 0.5 / math.tan(math.radians(fovy) / 2)
    xs, ys = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="xy")
    cam_dirs = torch.stack([(xs - size / 2) / f, -(ys - size / 2) / f, -torch.ones_like(xs)], -1)
    for v, az in enumerate([0, 90, 180, 270]):
        a = math.radians(az)
        pos = torch.tensor([radius * math.sin(a), 0.0, radius * math.cos(a)])
        z = pos / pos.norm()
        right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), z)
        right = right / right.norm()
        up = torch.linalg.cross(z, right)
        rot = torch.stack([right, up, z], dim=1)
        d = cam_dirs @ rot.T
        d = d / d.norm(dim=-1, keepdim=True)
        ref = torch.cat([torch.linalg.cross(pos.expand_as(d), d, dim=-1), d], -1).permute(2, 0, 1)
        torch.testing.assert_close(got[v], ref, atol=1e-5, rtol=1e-5)
