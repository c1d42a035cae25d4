"""OpenShape point encoder: checkpoint layout, loading, and the forward against a reference."""

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError
from gs_encoders import (
    OPENSHAPE_HUB_ID,
    OpenShapeConfig,
    OpenShapeEncoder,
    normalize_point_cloud,
    prepare_point_cloud,
)

# ---------------------------------------------------------------------------------------------
# The released model's state dict, written out from the official definition:
# Colin97/OpenShape_code src/models/ppat.py, make(cfg) with scaling == 4, i.e.
#   Projected(PointPatchTransformer(dim=512, depth=12, heads=8, mlp_dim=512*3, sa_dim=256,
#             patches=384, prad=0.2, nsamp=64, in_dim=6), nn.Linear(512, 1280))
# (the demo package OpenShape's openshape/__init__.py builds the same "G14" for
# openshape-pointbert-vitg14-rgb and loads module(s['state_dict'], 'module'), i.e. DDP keys).
#   PointPatchTransformer: cls_token = Parameter(randn(dim));
#     sa = PointNetSetAbstraction(in_channel = in_dim + 3, mlp = [64, 64, sa_dim]) with
#       mlp_convs = Conv2d(.., .., 1) and mlp_bns = BatchNorm2d (src/models/pointnet_util.py);
#     lift = Sequential(Conv1d(sa_dim + 3, dim, 1), Lambda(permute), LayerNorm([dim]));
#     transformer.layers[i] = [PreNorm(dim, Attention(to_qkv: Linear(dim, 3*8*64, bias=False),
#       to_out: Sequential(Linear(512, dim), Dropout))), PreNorm(dim, FeedForward(net:
#       Sequential(Linear(dim, mlp), GELU, Dropout, Linear(mlp, dim), Dropout)))]
# ---------------------------------------------------------------------------------------------
_OFFICIAL_HEAD = {
    "ppat.cls_token": (512,),
    "ppat.sa.mlp_convs.0.weight": (64, 9, 1, 1),
    "ppat.sa.mlp_convs.0.bias": (64,),
    "ppat.sa.mlp_convs.1.weight": (64, 64, 1, 1),
    "ppat.sa.mlp_convs.1.bias": (64,),
    "ppat.sa.mlp_convs.2.weight": (256, 64, 1, 1),
    "ppat.sa.mlp_convs.2.bias": (256,),
    **{
        f"ppat.sa.mlp_bns.{i}.{p}": ((c,) if p != "num_batches_tracked" else ())
        for i, c in enumerate((64, 64, 256))
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    },
    "ppat.lift.0.weight": (512, 259, 1),
    "ppat.lift.0.bias": (512,),
    "ppat.lift.2.weight": (512,),
    "ppat.lift.2.bias": (512,),
}
_OFFICIAL_LAYER = {
    "0.norm.weight": (512,),
    "0.norm.bias": (512,),
    "0.fn.to_qkv.weight": (1536, 512),
    "0.fn.to_out.0.weight": (512, 512),
    "0.fn.to_out.0.bias": (512,),
    "1.norm.weight": (512,),
    "1.norm.bias": (512,),
    "1.fn.net.0.weight": (1536, 512),
    "1.fn.net.0.bias": (1536,),
    "1.fn.net.3.weight": (512, 1536),
    "1.fn.net.3.bias": (512,),
}
OFFICIAL_KEYS = {
    **_OFFICIAL_HEAD,
    **{
        f"ppat.transformer.layers.{i}.{k}": s for i in range(12) for k, s in _OFFICIAL_LAYER.items()
    },
    "proj.weight": (1280, 512),
    "proj.bias": (1280,),
}
# Trainable parameters (buffers excluded), summed from the shapes above:
#   set abstraction 9*64+64 + 64*64+64 + 64*256+256 = 21,440; its BatchNorms 2*(64+64+256) = 768
#   lift 259*512+512 + 2*512 = 134,144; cls token 512
#   per layer 2*512 + 512*1536 + 512*512+512 + 2*512 + 512*1536+1536 + 1536*512+512 = 2,626,048
#   projection 512*1280 + 1280 = 656,640
# 21,440 + 768 + 134,144 + 512 + 12 * 2,626,048 + 656,640 = 32,326,080. Cross-check: the
# released model.pt is 388 MB on the hub, = 3 x 32.3 M fp32 values (weights + AdamW's two
# moments, which the training script saves beside them).
OFFICIAL_PARAMS = 32_326_080


def test_released_config_has_the_official_state_dict_layout():
    model = OpenShapeEncoder(OpenShapeConfig.preset("paper"))
    state = model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == OFFICIAL_KEYS
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS
    assert OFFICIAL_PARAMS == 21_440 + 768 + 134_144 + 512 + 12 * 2_626_048 + 656_640


def test_vitl14_preset_sizes():
    # make(cfg) scaling 3 sizes as built for openshape-pointbert-vitl14-rgb (768-d output)
    model = OpenShapeEncoder(OpenShapeConfig.preset("pointbert-vitl14-rgb"))
    state = model.state_dict()
    assert state["ppat.sa.mlp_convs.2.weight"].shape == (128, 64, 1, 1)
    assert state["ppat.lift.0.weight"].shape == (512, 131, 1)
    assert state["ppat.transformer.layers.11.1.fn.net.0.weight"].shape == (1024, 512)
    assert state["proj.weight"].shape == (768, 512)


def _official_checkpoint(model: OpenShapeEncoder) -> dict:
    """What OpenShape's Trainer.save_model writes: a DDP state dict beside training state."""
    sd = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    return {
        "state_dict": sd,
        "logit_scale": {"module.logit_scale": torch.tensor(14.28)},
        "text_proj": None,
        "image_proj": None,
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0)}},
            "param_groups": [{"lr": 1e-3, "params": [0]}],
        },
        "scheduler": {"step_size": 10000, "gamma": 0.95, "last_epoch": 7},
        "epoch": 7,
        "step": 1234,
        "best_lvis_acc": torch.tensor(0.46),
    }


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = OpenShapeEncoder(OpenShapeConfig.preset("tiny")).eval()
    # non-trivial BatchNorm statistics, so a lost buffer would change the output
    for bn in model.ppat.sa.mlp_bns:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="module")
def tiny_points():
    g = torch.Generator().manual_seed(5)
    return prepare_point_cloud(
        torch.randn(2, 300, 3, generator=g), torch.rand(2, 300, 3, generator=g), num_points=None
    )


def test_official_ddp_checkpoint_loads_weights_only(tmp_path, tiny_model, tiny_points):
    path = tmp_path / "model.pt"
    torch.save(_official_checkpoint(tiny_model), path)
    loaded = OpenShapeEncoder.from_pretrained(path, config=tiny_model.config)
    assert not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(tiny_points), tiny_model(tiny_points))
    # a directory holding model.pt works the same
    loaded_dir = OpenShapeEncoder.from_pretrained(tmp_path, config=tiny_model.config)
    torch.testing.assert_close(loaded_dir.proj.weight, tiny_model.proj.weight)


def test_pc_encoder_prefixed_checkpoint_loads(tmp_path, tiny_model):
    # the vitl14 release keeps the encoder under "pc_encoder." next to other networks
    sd = {f"pc_encoder.{k}": v for k, v in tiny_model.state_dict().items()}
    sd["text_proj.weight"] = torch.zeros(3, 3)
    path = tmp_path / "l14.pt"
    torch.save(sd, path)
    loaded = OpenShapeEncoder.from_pretrained(path, config=tiny_model.config)
    torch.testing.assert_close(loaded.ppat.cls_token, tiny_model.ppat.cls_token)


def test_gs3d_checkpoint_round_trip(tmp_path, tiny_model, tiny_points):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    loaded = OpenShapeEncoder.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == tiny_model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(tiny_points), tiny_model(tiny_points))


def test_wrong_sizes_and_unsafe_pickles_are_refused(tmp_path, tiny_model):
    path = tmp_path / "model.pt"
    torch.save(_official_checkpoint(tiny_model), path)
    with pytest.raises(FileFormatError, match="do not fit"):
        OpenShapeEncoder.from_pretrained(path)  # released sizes vs tiny weights

    # an arbitrary object (here a Namespace) needs a full unpickle, which gs3d never does
    bad = tmp_path / "bad.pt"
    torch.save(
        {"state_dict": {"module.proj.weight": torch.zeros(1)}, "cfg": argparse.Namespace(lr=1)}, bad
    )
    with pytest.raises(FileFormatError, match="weights_only"):
        OpenShapeEncoder.from_pretrained(bad, config=tiny_model.config)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        OpenShapeEncoder.from_pretrained(tmp_path / "missing.pt")


def test_hub_weights_missing_offline_say_what_and_how(offline_hub):
    with pytest.raises(WeightsNotFoundError) as e:
        OpenShapeEncoder.from_pretrained(OPENSHAPE_HUB_ID)
    msg = str(e.value)
    assert "model.pt" in msg and OPENSHAPE_HUB_ID in msg and "huggingface-cli download" in msg


def test_none_is_an_explicit_random_init():
    model = OpenShapeEncoder.from_pretrained(None, config=OpenShapeConfig.preset("tiny"))
    assert isinstance(model, OpenShapeEncoder) and not model.training


def _reference_forward(state: dict, cfg: OpenShapeConfig, points: torch.Tensor) -> torch.Tensor:
    """OpenShape's computation spelled out with explicit loops over the state dict tensors."""
    from gs_core.points import farthest_point_sample

    outs = []
    for cloud in points.double():
        xyz = cloud[:, :3]
        centres_idx = farthest_point_sample(xyz[None].float(), cfg.num_patches)[0]
        feats = []
        for c in centres_idx.tolist():
            d2 = ((xyz - xyz[c]) ** 2).sum(-1)
            members = [i for i in range(len(xyz)) if d2[i] <= cfg.ball_radius**2][: cfg.group_size]
            members += [members[0]] * (cfg.group_size - len(members))
            x = torch.cat([xyz[members] - xyz[c], cloud[members]], dim=-1)  # [k, 3 + 6]
            for i in range(3):
                w = state[f"ppat.sa.mlp_convs.{i}.weight"].double()[:, :, 0, 0]
                x = x @ w.T + state[f"ppat.sa.mlp_convs.{i}.bias"].double()
                mean = state[f"ppat.sa.mlp_bns.{i}.running_mean"].double()
                var = state[f"ppat.sa.mlp_bns.{i}.running_var"].double()
                g, b = (
                    state[f"ppat.sa.mlp_bns.{i}.weight"].double(),
                    state[f"ppat.sa.mlp_bns.{i}.bias"].double(),
                )
                x = torch.relu((x - mean) / torch.sqrt(var + 1e-5) * g + b)
            feats.append(torch.cat([xyz[c], x.max(0).values]))
        tokens = (
            torch.stack(feats) @ state["ppat.lift.0.weight"].double()[:, :, 0].T
            + state["ppat.lift.0.bias"].double()
        )
        tokens = F.layer_norm(
            tokens,
            (cfg.dim,),
            state["ppat.lift.2.weight"].double(),
            state["ppat.lift.2.bias"].double(),
        )
        x = torch.cat([state["ppat.cls_token"].double()[None], tokens])
        for layer in range(cfg.depth):
            p = f"ppat.transformer.layers.{layer}."

            def ln(t, name, p=p):
                return F.layer_norm(
                    t,
                    (cfg.dim,),
                    state[p + name + ".weight"].double(),
                    state[p + name + ".bias"].double(),
                )

            h = ln(x, "0.norm")
            q, k, v = (h @ state[p + "0.fn.to_qkv.weight"].double().T).chunk(3, dim=-1)
            heads = []
            for hd in range(cfg.heads):
                sl = slice(hd * cfg.head_dim, (hd + 1) * cfg.head_dim)
                a = torch.softmax(q[:, sl] @ k[:, sl].T / math.sqrt(cfg.head_dim), dim=-1)
                heads.append(a @ v[:, sl])
            o = (
                torch.cat(heads, -1) @ state[p + "0.fn.to_out.0.weight"].double().T
                + state[p + "0.fn.to_out.0.bias"].double()
            )
            x = x + o
            h = ln(x, "1.norm")
            h = F.gelu(
                h @ state[p + "1.fn.net.0.weight"].double().T
                + state[p + "1.fn.net.0.bias"].double()
            )
            x = (
                x
                + h @ state[p + "1.fn.net.3.weight"].double().T
                + state[p + "1.fn.net.3.bias"].double()
            )
        outs.append(x[0] @ state["proj.weight"].double().T + state["proj.bias"].double())
    return torch.stack(outs).float()


def test_forward_matches_reference(tiny_model, tiny_points):
    with torch.no_grad():
        ours = tiny_model(tiny_points)
    ref = _reference_forward(tiny_model.state_dict(), tiny_model.config, tiny_points)
    assert ours.shape == (2, 24)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_released_size_forward():
    torch.manual_seed(0)
    model = OpenShapeEncoder().eval()
    points = prepare_point_cloud(torch.randn(1, 900, 3), torch.rand(1, 900, 3), num_points=512)
    with torch.no_grad():
        out = model(points)
    assert out.shape == (1, 1280) and torch.isfinite(out).all()


def test_bf16_autocast_and_bf16_weights(tiny_model, tiny_points):
    with torch.no_grad():
        ref = tiny_model(tiny_points)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = tiny_model(tiny_points)
        half = OpenShapeEncoder(tiny_model.config).eval()
        half.load_state_dict(tiny_model.state_dict())
        out_half = half.to(torch.bfloat16)(tiny_points)
    assert out_half.dtype == torch.bfloat16
    for out in (auto, out_half):
        assert F.cosine_similarity(ref, out.float()).min().item() > 0.99


def test_point_count_and_layout_are_checked(tiny_model):
    with pytest.raises(ValidationError, match="points"):
        tiny_model(torch.rand(1, 300, 3))
    with pytest.raises(ValidationError, match="at least 16"):
        tiny_model(torch.rand(1, 10, 6))


def test_normalization_and_preparation():
    g = torch.Generator().manual_seed(6)
    xyz = torch.randn(2, 500, 3, generator=g) * 7 + 3
    n = normalize_point_cloud(xyz)
    torch.testing.assert_close(n.mean(1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(n.norm(dim=-1).amax(1), torch.ones(2))
    assert torch.equal(normalize_point_cloud(torch.ones(1, 4, 3)), torch.zeros(1, 4, 3))

    pts = prepare_point_cloud(xyz, num_points=800, generator=g)
    assert pts.shape == (2, 800, 6)
    assert torch.all(pts[..., 3:] == 0.4)  # OpenShape's grey for clouds without colour
    # upsampling keeps every original point, then repeats some
    assert torch.equal(pts[:, :500, :3], n)
    down = prepare_point_cloud(xyz[0], torch.rand(500, 3, generator=g), num_points=100, generator=g)
    assert down.shape == (1, 100, 6)
    swapped = prepare_point_cloud(xyz[:1], num_points=None, swap_yz=True)
    torch.testing.assert_close(swapped[0, :, 1], n[0, :, 2])


def test_knn_grouping_variant_runs_and_differs(tiny_model, tiny_points):
    knn = OpenShapeEncoder(tiny_model.config.model_copy(update={"grouping": "knn"})).eval()
    knn.load_state_dict(tiny_model.state_dict())  # same weights, other neighbourhoods
    with torch.no_grad():
        out = knn(tiny_points)
        assert out.shape == (2, 24)
        assert not torch.allclose(out, tiny_model(tiny_points))
