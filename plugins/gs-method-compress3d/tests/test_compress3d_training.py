"""Compress3D's training stages on a tiny procedural dataset."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import default_collate

from gs_core.data import MultiViewDataset
from gs_core.data.resident import IndexDataset
from gs_core.errors import GS3DError
from gs_core.training import Trainer
from gs_method_compress3d.config import STAGES, Compress3DConfig
from gs_method_compress3d.model import Compress3D
from gs_method_compress3d.training import stage_dataset, stage_points


def tiny(**overrides) -> Compress3D:
    torch.manual_seed(0)
    return Compress3D(Compress3DConfig.preset("tiny", **overrides))


def test_autoencoder_loss_decreases_on_one_object(tiny_data):
    model = tiny()
    module = model.training_module("autoencoder", data_dir=tiny_data)
    ds = stage_dataset(model.config, tiny_data, "autoencoder")
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


@pytest.mark.parametrize("resident", [True, False], ids=["resident", "dataloader"])
def test_every_stage_trains_through_the_engine(tiny_data, tmp_path, resident):
    model = tiny(train={"resident_data": resident})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for stage in STAGES:
        module = model.training_module(stage, data_dir=tiny_data)
        dataset = module.train_dataset()
        assert isinstance(dataset, IndexDataset) == resident
        result = Trainer(module, tmp_path / stage).fit()
        assert result.step == model.config.train.stage_steps[stage]
    after = model.state_dict()
    for prefix in ("encoders.", "autoencoder.", "prior.", "unet."):
        changed = [
            k for k in after if k.startswith(prefix) and not torch.equal(after[k], before[k])
        ]
        assert changed, f"stage training never updated {prefix}"


def test_resident_batches_have_the_stage_datasets_keys(tiny_data):
    """Each stage's step reads the resident batch as it reads a collated DataLoader batch."""
    model = tiny()
    index = torch.tensor([3, 0])
    for stage in ("encoders", "autoencoder"):
        module = model.training_module(stage, data_dir=tiny_data)
        batch = module.resident_batch(index)
        want = default_collate([stage_dataset(model.config, tiny_data, stage)[i] for i in (3, 0)])
        for key, value in want.items():
            if torch.is_tensor(value):
                assert batch[key].shape == value.shape, (stage, key)
                assert batch[key].dtype == value.dtype, (stage, key)
        assert ("target_depth" in batch) == (stage == "autoencoder")
        terms = module.training_step(index, 0)
        assert all(torch.isfinite(v) for v in terms.values()), stage


@pytest.mark.parametrize("stage", ["prior", "diffusion"])
def test_frozen_inputs_are_cached_once_and_equal_recomputed_ones(tiny_data, stage):
    m = model = tiny()
    module = model.training_module(stage, data_dir=tiny_data)
    assert isinstance(module.train_dataset(), IndexDataset)
    cached = module.frozen()
    views = module.resident()
    n_obj, n_views = views.num_objects, views.num_views
    assert cached["image_embedding"].shape == (n_obj, n_views, model.config.embeddings.dim)
    assert cached["shape_embedding"].shape == (n_obj, model.config.embeddings.dim)
    assert module.frozen() is cached  # computed once per stage

    index = torch.tensor([2, 1, 2, 0])
    torch.manual_seed(0)
    batch = module.resident_batch(index)
    torch.manual_seed(0)  # the same input views, drawn by ResidentViews.sample
    sample = views.sample(index, 1, input_view="random", background="white")
    assert torch.equal(batch["input_index"], sample["input_index"])
    n = stage_points(model.config, stage)
    with torch.no_grad():
        e_p = m.image_embedding(m.input_rgb(sample["input_rgba"]))
        e_s = m.shape_embedding(views.points[index, :n], views.point_colors[index, :n])
    torch.testing.assert_close(batch["image_embedding"], e_p)
    torch.testing.assert_close(batch["shape_embedding"], e_s)
    assert module.conditions(batch)[0] is batch["shape_embedding"]
    many = module.frozen_batch(torch.zeros(64, dtype=torch.long))["input_index"]
    assert set(many.tolist()) == set(range(n_views))  # a random input view per step
    # the cached view embedding is that of MultiViewDataset's input view of the object
    i_in = int(batch["input_index"][0])
    ds = MultiViewDataset(tiny_data, "train", resolution=32, input_view=i_in, num_target_views=1)
    item = ds[2]
    with torch.no_grad():
        e_item = m.image_embedding(m.input_rgb(item["input_rgba"][None]))[0]
    torch.testing.assert_close(batch["image_embedding"][0], e_item, atol=1e-5, rtol=1e-4)
    # a step runs from the indices alone
    terms = module.training_step(index, 0)
    assert set(terms) == {"prior_l1" if stage == "prior" else "eps_l1"}
    assert all(v.requires_grad and torch.isfinite(v) for v in terms.values())
    if stage == "prior":
        assert "latent_mean" not in batch
        return
    with torch.no_grad():
        posterior = m.autoencoder.encode(views.points[index, :n], views.point_colors[index, :n])
    torch.testing.assert_close(batch["latent_mean"], posterior.mean)
    torch.testing.assert_close(batch["latent_logvar"], posterior.logvar)
    # each step still samples the posterior N(mean, exp(logvar)): standardised draws are N(0, 1)
    draws = torch.stack([module.posterior(batch).sample() for _ in range(64)])
    z = (draws - posterior.mean) / torch.exp(0.5 * posterior.logvar)
    assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1) < 0.02


def test_stage_freezes_everything_but_its_network(tiny_data):
    model = tiny()
    model.training_module("prior", data_dir=tiny_data)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"prior"}


def test_encoders_stage_trains_the_image_encoder_then_aligns_the_shape_encoder(tiny_data):
    model = tiny(train={"stage_steps": {"encoders": 6}})
    assert model.config.embeddings.alignment == "openshape"
    module = model.training_module("encoders", data_dir=tiny_data)
    assert module.image_steps() == 3
    assert [module.optimizers_to_step(s) for s in (0, 2, 3, 5)] == [
        ["image"], ["image"], ["shape"], ["shape"]]  # fmt: skip
    opts = module.configure_optimizers()
    enc = model.encoders
    held = {
        name: {id(p) for g in entry[0].param_groups for p in g["params"]}
        for name, entry in opts.items()
    }
    assert held["image"] == {id(p) for p in [*enc.image.parameters(), enc.view_log_scale]}
    assert held["shape"] == {id(p) for p in [*enc.shape.parameters(), enc.log_scale]}
    module.train_dataset()
    batch = module.resident_batch(torch.arange(2))
    first = module.training_step(batch, 0)
    assert set(first) == {"view_contrastive", "view_retrieval_acc"}
    first["view_contrastive"].backward()
    assert all(p.grad is None for p in enc.shape.parameters())
    model.zero_grad(set_to_none=True)
    later = module.training_step(batch, 3)
    assert set(later) == {"contrastive", "retrieval_acc"}
    later["contrastive"].backward()
    assert all(p.grad is None for p in enc.image.parameters())  # the image side is frozen
    assert all(p.grad is not None for p in enc.shape.parameters())


def test_joint_alignment_trains_both_encoders_with_one_optimiser(tiny_data):
    model = tiny(embeddings={"alignment": "joint"})
    module = model.training_module("encoders", data_dir=tiny_data)
    assert module.image_steps() == 0 and module.optimizers_to_step(0) is None
    assert list(module.configure_optimizers()) == ["model"]
    module.train_dataset()
    terms = module.training_step(module.resident_batch(torch.arange(2)), 0)
    terms["contrastive"].backward()
    assert all(p.grad is not None for p in model.encoders.image.parameters())


def test_training_errors_are_one_clear_line(tmp_path):
    model = tiny(embeddings={"kind": "openshape", "dim": 16})
    with pytest.raises(GS3DError, match="--stage autoencoder"):
        model.training_module("encoders")
    module = tiny().training_module("autoencoder")
    with pytest.raises(GS3DError, match="--data"):
        module.train_dataset()


def _train_small_script():
    """``scripts/train_small.py`` imported as a module (it is not part of the package)."""
    from pathlib import Path

    from gs_core.testing import load_script

    path = Path(__file__).resolve().parents[1] / "scripts" / "train_small.py"
    return load_script(path, "compress3d_train_small")


def test_train_small_prior_retrieval_alone_skips_the_autoencoder(tiny_data, tmp_path):
    import json

    script = _train_small_script()
    out = tmp_path / "run"
    args = ["--preset", "tiny", "--data", str(tiny_data), "--eval-data", str(tiny_data),
            "--out", str(out), "--until", "prior", "--skip-autoencoder"]  # fmt: skip
    script.main(args)
    stages = json.loads((out / "results.json").read_text())["stages"]
    assert set(stages) == {"encoders", "prior"}
    assert len(stages["prior"]["retrieval"]["prior_to_shape_seeds"]) == 3
    with pytest.raises(SystemExit):
        script.main([*args[:-3], "--skip-autoencoder", "--overwrite"])  # not with diffusion


def test_train_small_script_runs_end_to_end_on_tiny(tiny_data, tmp_path):
    import json

    from gs_core.procedural import ProceduralConfig, generate

    held_out = tmp_path / "eval"
    generate(
        ProceduralConfig.preset("tiny", objects=3, views=4, split="test", seed=20251121),
        held_out,
        workers=0,
        progress=False,
    )
    script = _train_small_script()
    out = tmp_path / "run"
    script.main(
        [
            "--preset", "tiny", "--data", str(tiny_data), "--eval-data", str(held_out),
            "--out", str(out), "--seeds", "2", "--iou-resolution", "16",
            "--set", "train.stage_steps.prior=2", "--budget-s", '{"diffusion": 600}',
            "--ae-seeds", "2", "--retrieval-objects", "5", "--guidance-grid", "1,5",
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
    prior_retrieval = stages["prior"]["retrieval"]
    assert len(prior_retrieval["prior_to_shape_seeds"]) == 3
    assert prior_retrieval["prior_beats_image_embedding"] == (
        min(prior_retrieval["prior_to_shape_seeds"]) > prior_retrieval["image_to_shape"]
    )
    assert stages["encoders"]["retrieval_gallery"]["objects"] == 5
    assert "prior_to_shape" in stages["prior"]["retrieval_gallery"]
    table2 = stages["autoencoder"]
    assert table2["seeds"] == 2 and set(table2["attention_better_beyond_spread"]) == {
        "rgb",
        "mask",
        "depth",
        "chamfer",
    }
    # the spread is over two differently seeded runs of each variant
    assert table2["spread"]["attention"]["l_rgb"] > 0
    last = table2["per_seed"][3]
    assert (last["seed"], last["variant"]) == (1, "no_attention")
    assert last["curve"]["step"][-1] == last["steps"] and "loss/rgb" in last["curve"]
    assert (out / "work" / "autoencoder-no-attention-seed1" / "model").is_dir()
    assert stages["prior"]["steps"] == 2  # --set reached the stage's config
    assert stages["prior"]["latent_scale"] > 0
    for variant in ("prior", "no_prior"):
        scores = stages["diffusion"][variant]["scores"]
        assert "procedural_frechet_distance" in scores and scores["spread"]
        refs = stages["diffusion"][variant]["references"]
        assert set(refs) == {"blank", "input_copied"} and refs["blank"]["mask_iou"] == 0
    # Table 5: every (s_s, s_p) cell, and the (1, 5) cell is the configured default's score
    grid = stages["diffusion"]["guidance_grid"]
    assert [(c["s_s"], c["s_p"]) for c in grid["cells"]] == [(1, 1), (1, 5), (5, 1), (5, 5)]
    default = stages["diffusion"]["prior"]["scores"]
    assert grid["cells"][1]["procedural_frechet_distance"] == pytest.approx(
        default["procedural_frechet_distance"]
    )
    assert grid["best"] in grid["cells"]
    assert "guidance_grid" not in stages["diffusion"]["no_prior"]
    for name, shards in results["checkpoints"].items():
        for shard in shards:
            f = out / f"model-attention-{name}" / shard
            assert f.stat().st_size <= 16 * 1024 * 1024
    from safetensors import safe_open

    with safe_open(str(out / "model-attention-prior" / shards[0]), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118


def test_guidance_grid_values_are_checked_in_one_line():
    import argparse

    script = _train_small_script()
    assert script.guidance_values("1,3,5,10") == [1.0, 3.0, 5.0, 10.0]
    for bad in ("", "1,x", "-1,2", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="guidance scales"):
            script.guidance_values(bad)


def test_no_3d_references_are_scored_as_generations_are():
    script = _train_small_script()
    g = torch.Generator().manual_seed(0)
    k, h = 3, 8
    inp = torch.rand(4, h, h, generator=g)
    inp[3] = (inp[3] > 0.5).float()
    target_rgb = torch.rand(k, h, h, 3, generator=g)
    target_rgb[0] = inp[:3].permute(1, 2, 0)  # one target shows exactly the input
    item = {
        "input_rgba": inp,
        "input_rgb": inp[:3],
        "target_rgb": target_rgb,
        "target_alpha": inp[3:].permute(1, 2, 0).expand(k, h, h, 1).clone(),
        "target_depth": torch.zeros(k, h, h, 1),
        "background": torch.ones(3),
    }
    refs = script.reference_scores(item, "cpu")
    copy_mse = (target_rgb - inp[:3].permute(1, 2, 0)).pow(2).mean()
    blank_mse = (target_rgb - 1).pow(2).mean()
    assert refs["input_copied"]["psnr"] == pytest.approx(float(-10 * torch.log10(copy_mse)))
    assert refs["blank"]["psnr"] == pytest.approx(float(-10 * torch.log10(blank_mse)))
    assert refs["input_copied"]["mask_iou"] == pytest.approx(1.0)  # same silhouette everywhere
    assert refs["blank"]["mask_iou"] == 0.0


def test_train_small_budget_is_seconds_or_seconds_per_stage(tmp_path, capsys):
    script = _train_small_script()
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path / "run"), "--budget-s", '{"decoder": 10}'])
    assert "keyed by encoders, autoencoder, prior, diffusion" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_table2_means_spreads_and_margins_beyond_spread():

    script = _train_small_script()

    def run(rgb, mask, depth, chamfer):
        return {"scores": {"l_rgb": rgb, "l_mask": mask, "l_depth": depth, "chamfer": chamfer}}

    runs = [  # seed 0 attention, seed 0 without, seed 1 attention, seed 1 without
        run(1.0, 5.0, 2.0, 3.0),
        run(2.0, 5.5, 1.0, 3.1),
        run(1.2, 5.0, 2.2, 3.0),
        run(2.2, 4.5, 1.2, 3.2),
    ]
    runs[2]["steps"] = 1737
    t = script.table2(runs, 2)
    assert [(r["seed"], r["variant"]) for r in t["per_seed"]] == [
        (0, "attention"),
        (0, "no_attention"),
        (1, "attention"),
        (1, "no_attention"),
    ]
    assert t["per_seed"][2]["steps"] == 1737
    assert t["per_seed"][3]["scores"]["l_rgb"] == 2.2
    assert t["mean"]["attention"]["l_rgb"] == pytest.approx(1.1)
    assert t["spread"]["no_attention"]["l_mask"] == pytest.approx(1.0)
    assert t["attention_better"] == {"rgb": True, "mask": False, "depth": False, "chamfer": True}
    # rgb: margin 1.0 > spreads 0.2; chamfer: margin 0.15 > spreads 0 and 0.1; mask: worse
    assert t["attention_better_beyond_spread"] == {
        "rgb": True,
        "mask": False,
        "depth": False,
        "chamfer": True,
    }
    # pairs: rgb margins 1.0 and 1.0; mask -0.5 and 0.5 (one win each way)
    assert t["paired"]["rgb"] == {
        "seeds": 2,
        "mean_margin": pytest.approx(1.0),
        "standard_error": pytest.approx(0.0),
        "attention_wins": 2,
    }
    assert t["paired"]["mask"]["attention_wins"] == 1
    assert t["paired"]["mask"]["mean_margin"] == pytest.approx(0.0)
    assert t["paired"]["mask"]["standard_error"] == pytest.approx(0.5)
    runs[3]["scores"]["chamfer"] = 3.4  # without: spread 0.3 > margin 0.25
    assert not script.table2(runs, 2)["attention_better_beyond_spread"]["chamfer"]


def test_table2_seeds_from_separate_commands_join_into_one_table(tmp_path, capsys):
    script = _train_small_script()

    def run(rgb):
        return {"scores": {"l_rgb": rgb, "l_mask": 1.0, "l_depth": 1.0, "chamfer": 1.0}}

    first = script.table2([run(1.0), run(2.0), run(1.2), run(2.2)], 2)
    later = script.table2([run(0.8), run(2.4)], 1, first_seed=2)
    assert [r["seed"] for r in later["per_seed"]] == [2, 2]
    files = []
    for i, table in enumerate((later, first)):  # the order given does not matter
        files.append(tmp_path / f"r{i}.json")
        files[-1].write_text(json.dumps({"devices": ["cuda:0"], "stages": {"autoencoder": table}}))
    merged = script.main(["--out", str(tmp_path / "m"), "--merge-table2", *map(str, files)])
    t = merged["stages"]["autoencoder"]
    assert t["seeds"] == 3
    assert [(r["seed"], r["variant"]) for r in t["per_seed"]] == [
        (s, v) for s in (0, 1, 2) for v in ("attention", "no_attention")
    ]
    assert t["mean"]["attention"]["l_rgb"] == pytest.approx(1.0)
    assert t["mean"]["no_attention"]["l_rgb"] == pytest.approx(2.2)
    assert t["spread"]["attention"]["l_rgb"] == pytest.approx(0.4)
    assert json.loads((tmp_path / "m" / "results.json").read_text())["stages"]["autoencoder"] == t
    # a seed given twice, or a seed without one of its variants, is refused in one line
    for bad, message in (
        ([files[1], files[1]], "seed 0 attention appears twice"),
        ([files[0]], None),
    ):
        if message is None:
            one = json.loads(files[0].read_text())
            one["stages"]["autoencoder"]["per_seed"].pop()
            files[0].write_text(json.dumps(one))
            message = "seed 2 has no no_attention run"
        with pytest.raises(SystemExit):
            script.main(["--out", str(tmp_path / "bad"), "--merge-table2", *map(str, bad)])
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_table2_keeps_seeds_that_are_not_consecutive(tmp_path):
    """Seeds 0 and 4 (two commands, the middle ones left out) keep their own numbers."""
    script = _train_small_script()

    def run(rgb):
        return {"scores": {"l_rgb": rgb, "l_mask": 1.0, "l_depth": 1.0, "chamfer": 1.0}}

    t = script.table2([run(1.0), run(2.0), run(0.5), run(3.0)], [0, 4])
    assert [r["seed"] for r in t["per_seed"]] == [0, 0, 4, 4] and t["seeds"] == 2
    assert t["paired"]["rgb"]["mean_margin"] == pytest.approx(1.75)
    files = []
    for first in (0, 4):
        one = script.table2([run(1.0), run(2.0)], 1, first_seed=first)
        files.append(tmp_path / f"s{first}.json")
        files[-1].write_text(json.dumps({"stages": {"autoencoder": one}}))
    merged = script.merge_table2([json.loads(f.read_text()) for f in files])
    assert [r["seed"] for r in merged["per_seed"]] == [0, 0, 4, 4]
    with pytest.raises(ValueError, match="one attention / no-attention pair per seed"):
        script.table2([run(1.0), run(2.0), run(0.5)], [0, 4])


def test_autoencoder_seeds_can_start_above_zero(tmp_path, tiny_data):
    script = _train_small_script()
    out = tmp_path / "run"
    res = script.main(
        [
            "--preset", "tiny", "--data", str(tiny_data), "--eval-data", str(tiny_data),
            "--out", str(out), "--iou-resolution", "16", "--until", "autoencoder",
            "--ae-first-seed", "2", "--set", "train.stage_steps.autoencoder=2",
            "train.stage_steps.encoders=2",
        ]
    )  # fmt: skip
    t = res["stages"]["autoencoder"]
    assert [(r["seed"], r["variant"]) for r in t["per_seed"]] == [
        (2, "attention"),
        (2, "no_attention"),
    ]
    assert (out / "work" / "autoencoder-no-attention-seed2" / "model").is_dir()
    assert not (out / "work" / "autoencoder-attention").exists()


def test_loss_curve_keeps_about_the_asked_points_and_the_last_step(tmp_path):
    script = _train_small_script()
    log = tmp_path / "metrics.jsonl"
    rows = [{"step": i, "loss/rgb": 1.0 / i, "it_s": 3.0} for i in range(1, 101)]
    rows[99]["loss/kl"] = 5.0
    rows[50]["loss/rgb"] = float("nan")  # step 51, a picked row
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    curve = script.loss_curve(log, points=40)
    assert curve["step"][-1] == 100 and len(curve["step"]) <= 41
    assert curve["step"] == sorted(curve["step"]) and curve["step"][0] == 3
    assert set(curve) == {"step", "loss/kl", "loss/rgb"}  # it_s is not a loss
    assert (
        curve["loss/kl"][:-1] == [None] * (len(curve["step"]) - 1) and curve["loss/kl"][-1] == 5.0
    )
    assert curve["loss/rgb"][curve["step"].index(51)] is None
    json.loads(json.dumps(curve, allow_nan=False))
    assert script.loss_curve(tmp_path / "absent.jsonl") == {}
