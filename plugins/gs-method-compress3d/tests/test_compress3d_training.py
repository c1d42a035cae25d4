"""Compress3D's training stages on a tiny procedural dataset."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import default_collate

from gs_core.errors import GS3DError
from gs_core.training import Trainer
from gs_method_compress3d.config import STAGES, Compress3DConfig
from gs_method_compress3d.model import Compress3D


def tiny(**overrides) -> Compress3D:
    torch.manual_seed(0)
    return Compress3D(Compress3DConfig.preset("tiny", **overrides))


def test_autoencoder_loss_decreases_on_one_object(tiny_data):
    model = tiny()
    module = model.training_module("autoencoder", data_dir=tiny_data)
    ds = module.train_dataset()
    ds.config.seed = 0
    batch = default_collate([ds[0]])
    assert batch["target_depth"].shape[-1] == 1 and batch["points"].shape[1] == 512
    opt = torch.optim.Adam(model.autoencoder.parameters(), lr=3e-3)
    torch.manual_seed(0)
    history = []
    for _ in range(20):
        terms = module.autoencoder_terms(batch, sample=False)  # the mean: a fixed objective
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in terms.items()})
    names = {"loss", "rgb", "mask", "depth", "kl", "dev", "sdf_reg", "empty_surface"}
    assert set(history[0]) == names
    first, last = history[0], min(history[-3:], key=lambda h: h["loss"])
    assert last["loss"] < 0.85 * first["loss"]
    assert last["rgb"] < first["rgb"]


def test_every_stage_trains_through_the_engine(tiny_data, tmp_path):
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for stage in STAGES:
        module = model.training_module(stage, data_dir=tiny_data)
        result = Trainer(module, tmp_path / stage).fit()
        assert result.step == model.config.train.stage_steps[stage]
    after = model.state_dict()
    for prefix in ("encoders.", "autoencoder.", "prior.", "unet."):
        changed = [
            k for k in after if k.startswith(prefix) and not torch.equal(after[k], before[k])
        ]
        assert changed, f"stage training never updated {prefix}"


def test_stage_freezes_everything_but_its_network(tiny_data):
    model = tiny()
    model.training_module("prior", data_dir=tiny_data)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"prior"}


def test_training_errors_are_one_clear_line(tmp_path):
    model = tiny(embeddings={"kind": "openshape", "dim": 16})
    with pytest.raises(GS3DError, match="--stage autoencoder"):
        model.training_module("encoders")
    module = tiny().training_module("autoencoder")
    with pytest.raises(GS3DError, match="--data"):
        module.train_dataset()


def test_train_small_script_runs_end_to_end_on_tiny(tiny_data, tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    from gs_core.procedural import ProceduralConfig, generate

    held_out = tmp_path / "eval"
    generate(
        ProceduralConfig.preset("tiny", objects=3, views=4, split="test", seed=20251121),
        held_out,
        workers=0,
        progress=False,
    )
    path = Path(__file__).resolve().parents[1] / "scripts" / "train_small.py"
    spec = importlib.util.spec_from_file_location("compress3d_train_small", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "run"
    script.main(
        [
            "--preset", "tiny", "--data", str(tiny_data), "--eval-data", str(held_out),
            "--out", str(out), "--seeds", "2", "--iou-resolution", "16",
        ]
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    stages = results["stages"]
    assert stages["encoders"]["retrieval"]["objects"] == 3
    for variant in ("attention", "no_attention"):
        scores = stages["autoencoder"][variant]["scores"]
        assert {"psnr", "l_rgb", "l_mask", "mask_iou", "l_depth", "chamfer", "volume_iou"} <= set(
            scores
        )
    assert "prior_to_shape" in stages["prior"]["retrieval"]
    assert stages["prior"]["latent_scale"] > 0
    for variant in ("prior", "no_prior"):
        scores = stages["diffusion"][variant]["scores"]
        assert "procedural_frechet_distance" in scores and scores["spread"]
    for name, shards in results["checkpoints"].items():
        for shard in shards:
            f = out / f"model-attention-{name}" / shard
            assert f.stat().st_size <= 16 * 1024 * 1024
    from safetensors import safe_open

    with safe_open(str(out / "model-attention-prior" / shards[0]), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118
