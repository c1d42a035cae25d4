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


@pytest.mark.parametrize("shard", [None, 300])
def test_save_load_roundtrip(tmp_path, shard):
    torch.manual_seed(0)
    net = Net(NetConfig(width=8, depth=3))
    net.save_pretrained(tmp_path / "ck", max_shard_bytes=shard)
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert "config.json" in files
    if shard:
        assert "model.safetensors.index.json" in files and len(files) > 3
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
