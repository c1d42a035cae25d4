import json
from typing import ClassVar

import pytest
import torch
from torch import nn

from gs_core.config import Config
from gs_core.errors import FileFormatError, GS3DError, WeightsNotFoundError
from gs_core.pretrained import PretrainedMixin, load_state_dict


class NetConfig(Config):
    width: int = 8
    depth: int = 2
    presets: ClassVar[dict] = {"paper": {"width": 64}, "tiny": {"width": 4, "depth": 1}}


class Net(PretrainedMixin, nn.Module):
    config_class = NetConfig

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.layers = nn.Sequential(
            *[nn.Linear(config.width, config.width) for _ in range(config.depth)]
        )


def test_presets_and_overrides():
    assert NetConfig.preset("paper").width == 64
    cfg = NetConfig.preset("tiny").with_overrides(["width=16"])
    assert cfg.width == 16 and cfg.depth == 1
    with pytest.raises(GS3DError, match="unknown preset 'nope'"):
        NetConfig.preset("nope")
    with pytest.raises(GS3DError, match="no field 'bogus'"):
        cfg.with_overrides(["bogus=1"])
    with pytest.raises(GS3DError, match="width"):
        cfg.with_overrides(["width=abc"])


@pytest.mark.parametrize("shard", [None, 300, 1 << 30])
def test_save_load_roundtrip(tmp_path, shard):
    torch.manual_seed(0)
    net = Net(NetConfig(width=8, depth=3))
    net.save_pretrained(tmp_path / "ck", max_shard_bytes=shard)
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert "config.json" in files
    if shard == 300:
        assert "model.safetensors.index.json" in files and len(files) > 3
    else:  # no limit, or one that every weight fits under: one file, no index
        assert files == ["config.json", "model.safetensors"]
    loaded = Net.from_pretrained(tmp_path / "ck")
    assert loaded.config == net.config
    for (k, a), (k2, b) in zip(net.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    with pytest.raises(FileExistsError):
        net.save_pretrained(tmp_path / "ck")


def test_bad_checkpoints(tmp_path):
    net = Net(NetConfig())
    net.save_pretrained(tmp_path / "ck")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileFormatError, match="no config.json"):
        Net.from_pretrained(tmp_path / "empty")
    cfg = json.loads((tmp_path / "ck/config.json").read_text())
    cfg["unknown_field"] = 3
    (tmp_path / "ck/config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileFormatError, match="unknown_field"):
        Net.from_pretrained(tmp_path / "ck")
    cfg.pop("unknown_field")
    cfg["width"] = "wide"
    (tmp_path / "ck/config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileFormatError, match="config.json.*width"):
        Net.from_pretrained(tmp_path / "ck")
    (tmp_path / "ck/config.json").write_text("{not json")
    with pytest.raises(FileFormatError, match="not valid JSON"):
        Net.from_pretrained(tmp_path / "ck")
    (tmp_path / "ck/model.safetensors").write_bytes(b"garbage")
    with pytest.raises(FileFormatError, match="model.safetensors"):
        load_state_dict(tmp_path / "ck")
    with pytest.raises(WeightsNotFoundError, match="no such checkpoint directory"):
        Net.from_pretrained(tmp_path / "missing")


def test_missing_hub_model_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="could not fetch|not installed"):
        Net.from_pretrained("nobody/does-not-exist")


@pytest.mark.parametrize("shard", [None, 4096])
def test_int8_weight_only_checkpoint_roundtrip(tmp_path, shard):
    """int8=True stores large weights as int8 plus per-channel scales (half of fp16's bytes);
    loading dequantises them to within about half a quantisation step; small tensors stay
    exact."""
    from safetensors import safe_open

    from gs_core.weight_quantization import SCALE_SUFFIX

    torch.manual_seed(0)
    net = Net(NetConfig(width=64, depth=2))
    net.save_pretrained(tmp_path / "q", max_shard_bytes=shard, int8=True)
    net.save_pretrained(tmp_path / "f", max_shard_bytes=shard)
    stored = {}
    for f in sorted((tmp_path / "q").glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            stored.update({k: h.get_tensor(k) for k in h.keys()})  # noqa: SIM118
    assert stored["layers.0.weight"].dtype == torch.int8
    assert stored["layers.0.weight" + SCALE_SUFFIX].shape == (64,)
    assert stored["layers.0.bias"].dtype == torch.float32  # too small to quantise
    q_bytes = sum(f.stat().st_size for f in (tmp_path / "q").glob("*.safetensors"))
    f_bytes = sum(f.stat().st_size for f in (tmp_path / "f").glob("*.safetensors"))
    assert q_bytes < 0.4 * f_bytes  # fp32 -> int8 weights
    loaded = Net.from_pretrained(tmp_path / "q")
    for k, a in net.state_dict().items():
        b = loaded.state_dict()[k]
        if k.endswith("weight"):
            # half a step, plus the fp16 rounding of the scale (2^-11 of up to 127 steps)
            step = a.abs().amax(dim=1, keepdim=True) / 127
            assert bool(((a - b).abs() <= 0.6 * step).all()) and not torch.equal(a, b)
        else:
            assert torch.equal(a, b)


def test_int8_scale_without_its_weight_is_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    from gs_core.weight_quantization import SCALE_SUFFIX

    net = Net(NetConfig(width=64, depth=1))
    net.save_pretrained(tmp_path / "q", int8=True)
    state = load_state_dict(tmp_path / "q")  # dequantised
    state["layers.0.weight" + SCALE_SUFFIX] = torch.ones(64, dtype=torch.float16)
    save_file(state, str(tmp_path / "q" / "model.safetensors"))
    with pytest.raises(FileFormatError, match="int8 weight 'layers.0.weight'"):
        load_state_dict(tmp_path / "q")
