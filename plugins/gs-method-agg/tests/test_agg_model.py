"""The AGG model: paper sizes, canonical Gaussians, the hybrid decomposition, super-resolution,
checkpoints (sharded, fp16, bundled) and the conformance suite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_core.errors import GS3DError
from gs_core.gaussians import sh0_to_rgb
from gs_core.testing import MethodConformanceTests, tiny_rgba_images
from gs_method_agg import AGG, AGGConfig, load_bundled


class TestAggConformance(MethodConformanceTests):
    method = "agg"


def tiny(**overrides) -> AGG:
    torch.manual_seed(0)
    return AGG(AGGConfig.preset("tiny", **overrides)).eval()


def test_paper_preset_is_the_paper():
    c = AGGConfig.preset("paper")
    assert (c.encoder.kind, c.encoder.variant, c.encoder.image_size) == ("dinov2", "base", 256)
    assert c.encoder_dim == 768
    assert c.num_gaussians == 4096 and c.coarse_scale == 0.03
    assert c.upsampler.ratio == 4 and c.num_output_gaussians == 16384 and c.fine_scale == 0.01
    assert c.texture_field and c.super_resolution
    assert c.upsampler.cross_attn_before >= 1 and c.upsampler.cross_attn_after >= 1


def test_inconsistent_widths_are_rejected():
    with pytest.raises(GS3DError, match="context_dim"):
        AGGConfig.preset("tiny").with_overrides(["texture.context_dim=48"])


def test_canonical_gaussians():
    m = tiny()
    out = m.generate(tiny_rgba_images(2, 32))
    g, c = out.gaussians, out.extras["coarse"]
    cfg = m.config
    assert g.batch_shape == (2,) and g.num_gaussians == cfg.num_gaussians * cfg.upsampler.ratio
    assert c.num_gaussians == cfg.num_gaussians
    for gs, scale in ((g, cfg.fine_scale), (c, cfg.coarse_scale)):
        assert torch.all(gs.scales == scale)
        assert torch.all(gs.quats == torch.tensor([1.0, 0.0, 0.0, 0.0]))
        assert gs.sh_degree == 0
        assert gs.means.abs().max() <= cfg.position_bound
    assert set(out.timings) >= {"encode", "coarse", "super_resolution", "total"}


def test_geometry_does_not_depend_on_the_texture_branch():
    """Sec. 3.2: locations come from the geometry predictor alone; the texture field only
    colours them, read at those locations."""
    m = tiny(super_resolution=False)
    x = tiny_rgba_images(1, 32)
    a = m(m.input_rgb(x))["coarse"]
    with torch.no_grad():
        for p in m.coarse.texture.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    b = m(m.input_rgb(x))["coarse"]
    torch.testing.assert_close(a["xyz"], b["xyz"])
    assert not torch.allclose(a["rgb"], b["rgb"])
    # the colour is the shared MLP applied to the triplane sampled at the predicted positions
    cls, tokens = m.encoder(m.input_rgb(x))
    planes = m.coarse.texture.planes(cls, tokens)
    unit = b["xyz"] / m.config.position_bound
    import torch.nn.functional as F

    feats = []
    for plane, (u, v) in zip(planes[0], ((0, 1), (1, 2), (2, 0)), strict=True):
        grid = unit[0][:, [u, v]].view(1, 1, -1, 2)
        feats.append(
            F.grid_sample(plane[None], grid, align_corners=False, padding_mode="border")[0, :, 0].T
        )
    raw = m.coarse.texture.decoder(torch.cat(feats, -1))
    torch.testing.assert_close(torch.sigmoid(raw[:, :3]), b["rgb"][0])


def test_without_texture_field_one_network_decodes_everything():
    m = tiny(texture_field=False, super_resolution=False)
    assert m.coarse.texture is None and m.sr is None
    assert m.coarse.geometry.head[-1].out_features == 7
    g = m.generate(tiny_rgba_images(1, 32)).gaussians
    assert g.num_gaussians == m.config.num_gaussians


def test_super_resolution_children_stay_near_their_parents():
    m = tiny()
    torch.nn.init.normal_(m.sr.net.head.weight, std=1.0)  # a trained head: children move
    with torch.no_grad():
        out = m(m.input_rgb(tiny_rgba_images(1, 32)))
    r = m.config.upsampler.ratio
    parents = out["coarse"]["xyz"].repeat_interleave(r, dim=1)
    split = m.sr.split_offsets.norm(dim=-1).max()
    move = (out["fine"]["xyz"] - parents).norm(dim=-1).max()
    assert move <= split + 3**0.5 * m.config.sr_offset_scale + 1e-6
    assert (out["fine"]["xyz"] - parents).abs().max() > 0.5 * m.config.sr_offset_scale
    assert out["fine"]["xyz"].shape[1] == r * out["coarse"]["xyz"].shape[1]


@pytest.mark.parametrize("ratio", [4, 6, 3])
def test_split_directions_are_centred(ratio):
    from gs_method_agg.generator import split_directions

    u = split_directions(ratio)
    assert u.shape == (ratio, 3)
    torch.testing.assert_close(u.square().sum(), torch.tensor(float(ratio)))
    torch.testing.assert_close(u.sum(0), torch.zeros(3), atol=1e-6, rtol=0)
    if ratio in (4, 6):  # isotropic: the split keeps the parent's covariance
        torch.testing.assert_close(u.T @ u, ratio / 3 * torch.eye(3), atol=1e-6, rtol=0)


def test_untrained_super_resolution_is_a_moment_matched_split():
    m = tiny(upsampler={"ratio": 4}, coarse_scale=0.05, fine_scale=0.03)
    with torch.no_grad():
        out = m(m.input_rgb(tiny_rgba_images(2, 32)))
    co, fine = out["coarse"], out["fine"]
    r = 4
    kids = fine["xyz"].unflatten(1, (-1, r))  # [B, N, r, 3]
    inside = co["xyz"].abs().amax(-1) < m.config.position_bound - 0.1  # away from the clamp
    # children centred on the parent, at distance d = sqrt(3 (0.05^2 - 0.03^2)) = 0.0693
    torch.testing.assert_close(kids.mean(2)[inside], co["xyz"][inside], atol=1e-5, rtol=0)
    d = (kids - co["xyz"].unsqueeze(2)).norm(dim=-1)[inside]
    torch.testing.assert_close(d, torch.full_like(d, (3 * (0.05**2 - 0.03**2)) ** 0.5))
    # mixture covariance s_f^2 I + cov(children) == s_c^2 I
    dev = kids[inside] - co["xyz"][inside].unsqueeze(1)
    cov = dev.transpose(1, 2) @ dev / r + 0.03**2 * torch.eye(3)
    torch.testing.assert_close(cov, (0.05**2 * torch.eye(3)).expand_as(cov), atol=1e-6, rtol=0)
    # the parents' colour and opacity
    for k in ("rgb", "opacity"):
        parent = co[k].repeat_interleave(r, dim=1)
        torch.testing.assert_close(fine[k], parent.clamp(1e-4, 1 - 1e-4), atol=1e-5, rtol=0)


def test_sharded_fp16_checkpoint_roundtrip(tmp_path):
    from gs_core.pretrained import load_state_dict, save_state_dict

    m = tiny()
    full = m.save_pretrained(tmp_path / "full")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_bytes((full / "config.json").read_bytes())
    state = {k: v.half() if v.is_floating_point() else v for k, v in load_state_dict(full).items()}
    save_state_dict(state, half, max_shard_bytes=64 * 1024)
    assert len(list(half.glob("model-*.safetensors"))) > 1
    loaded = AGG.from_pretrained(half).eval()
    assert loaded.config == m.config
    x = tiny_rgba_images(1, 32)
    a, b = m.generate(x).gaussians, loaded.generate(x).gaussians
    torch.testing.assert_close(a.means, b.means, atol=2e-2, rtol=0)
    assert next(loaded.parameters()).dtype == torch.float32


def small_dinov2_config(pretrained) -> AGGConfig:
    return AGGConfig.preset("tiny").with_overrides(
        {
            "encoder": {
                "kind": "dinov2",
                "variant": "small",
                "pretrained": pretrained,
                "image_size": 28,
            },
            "texture.context_dim": 384,
            "upsampler.context_dim": 384,
        }
    )


def test_missing_dinov2_weights_fail_clearly(tmp_path):
    m = AGG(small_dinov2_config(f"{tmp_path}/missing.safetensors"))
    with pytest.raises(GS3DError, match="missing.safetensors"):
        m.generate(tiny_rgba_images(1, 32))
    with pytest.raises(GS3DError, match="missing.safetensors"):
        m.save_pretrained(tmp_path / "ckpt")


def test_dinov2_weights_load_once_and_checkpoints_are_self_contained(tmp_path):
    from gs_encoders import DinoV2Encoder

    torch.manual_seed(0)
    released = DinoV2Encoder("small", pretrained=None, image_size=28)
    released.save_pretrained(tmp_path / "dino")
    m = AGG(small_dinov2_config(str(tmp_path / "dino"))).eval()
    m.generate(tiny_rgba_images(1, 32))  # first use loads the given DINOv2 weights
    pairs = zip(
        m.encoder.dino.model.state_dict().values(),
        released.model.state_dict().values(),
        strict=True,
    )
    for a, b in pairs:
        torch.testing.assert_close(a, b)
    ckpt = m.save_pretrained(tmp_path / "agg")
    (tmp_path / "dino" / "model.safetensors").unlink()  # the checkpoint alone must suffice
    loaded = AGG.from_pretrained(ckpt).eval()
    x = tiny_rgba_images(1, 32)
    torch.testing.assert_close(loaded.generate(x).gaussians.means, m.generate(x).gaussians.means)
    # the generic loader (gs3d generate / eval / demo) builds AGG(config), then loads the state
    from gs_core.loading import load_method

    generic = load_method("agg", checkpoint=str(ckpt))
    torch.testing.assert_close(generic.generate(x).gaussians.means, m.generate(x).gaussians.means)


def test_bundled_model_is_the_small_preset():
    """The shipped checkpoint is the ``small`` preset's network: the paper's 4,096 coarse
    Gaussians super-resolved x4 to 16,384, with the canonical scales 0.03 / 0.01."""
    from gs_method_agg import BUNDLED_CHECKPOINT

    small = AGGConfig.preset("small")
    assert small.num_gaussians == 4096 and small.num_output_gaussians == 16384
    assert (small.coarse_scale, small.fine_scale) == (0.03, 0.01)
    assert small.resident_data and small.upsampler.ratio == 4
    shipped = AGGConfig.load_json(BUNDLED_CHECKPOINT / "config.json")
    # everything but the engine settings of its last stage is the preset
    assert shipped.model_dump(exclude={"train"}) == small.model_dump(exclude={"train"})
    m = load_bundled()
    assert sum(p.numel() for p in m.parameters()) == 14_004_206


def test_bundled_model_generates_the_examples():
    from gs_core.data import load_object_views
    from gs_core.data.layout import read_split
    from gs_method_agg import EXAMPLES_DIR

    m = load_bundled().eval()
    ids = read_split(EXAMPLES_DIR, "test")
    assert len(ids) == 3
    rgba = [load_object_views(EXAMPLES_DIR / oid, 128).rgba[0] for oid in ids]
    x = torch.from_numpy(np.stack(rgba)).float().div(255).permute(0, 3, 1, 2)
    out = m.generate(x)
    g = out.gaussians
    assert g.num_gaussians == 16384 and out.extras["coarse"].num_gaussians == 4096
    assert torch.all(g.scales == 0.01) and torch.all(out.extras["coarse"].scales == 0.03)
    for b in range(len(ids)):
        # the predicted colours are closer to the input's object colour than to white
        obj = x[b, :3][:, x[b, 3] > 0.5].mean(-1)
        rgb = sh0_to_rgb(g.sh[b, :, 0]).clamp(0, 1)
        seen = rgb[g.opacities[b] > 0.5].mean(0)
        assert (seen - obj).abs().mean() < (seen - 1.0).abs().mean(), ids[b]


def test_cuda_graph_needs_cuda():
    with pytest.raises(ValueError, match="cuda_graph"):
        tiny().generate(tiny_rgba_images(1, 32), cuda_graph=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_cuda_graph_generate_equals_eager(preset):
    torch.manual_seed(0)
    m = AGG(AGGConfig.preset(preset)).cuda().eval()
    x = tiny_rgba_images(2, m.config.encoder.image_size).cuda()
    eager = m.generate(x, cuda_graph=False)
    for _ in range(2):  # the first call records, the second replays
        graphed = m.generate(x)
        torch.testing.assert_close(graphed.gaussians.means, eager.gaussians.means)
        torch.testing.assert_close(graphed.gaussians.sh, eager.gaussians.sh)
        torch.testing.assert_close(graphed.gaussians.opacities, eager.gaussians.opacities)
    assert set(graphed.timings) == {"encode", "coarse", "super_resolution", "total"}
