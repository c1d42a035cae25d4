"""AGG's training stages: losses against independent references, stage freezing, pseudo labels,
and the shared engine / ``gs3d train`` driving warmup -> coarse -> sr on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from gs_core.data import batch_cameras
from gs_core.errors import GS3DError
from gs_core.gaussians import Gaussians
from gs_core.rendering import render
from gs_method_agg import AGG, AGGConfig
from gs_method_agg.model import canonical_gaussians


def model_and_module(stage, data, **overrides):
    torch.manual_seed(0)
    m = AGG(AGGConfig.preset("tiny", **overrides))
    return m, m.training_module(stage, data_dir=data)


def first_batch(module, n=2):
    ds = module.train_dataset()
    torch.manual_seed(0)
    return default_collate([ds[i] for i in range(n)])


def brute_force_attribute_chamfer(p: dict, q: dict) -> dict:
    """AGG Sec. 3.4.2 with numpy: nearest neighbours by squared distance of the means, L1 of each
    attribute, both directions, averaged over points and then over the batch."""
    out = {}
    for k in p:
        vals = []
        for b in range(p["xyz"].shape[0]):
            a, c = p["xyz"][b], q["xyz"][b]
            d = ((a[:, None] - c[None]) ** 2).sum(-1)
            fwd = np.abs(p[k][b] - q[k][b][d.argmin(1)]).sum(-1).mean()
            bwd = np.abs(q[k][b] - p[k][b][d.argmin(0)]).sum(-1).mean()
            vals.append(fwd + bwd)
        out[k] = float(np.mean(vals))
    return out


def test_warmup_is_the_attribute_chamfer_loss(tiny_data):
    m, mod = model_and_module("warmup", tiny_data)
    batch = first_batch(mod)
    torch.manual_seed(1)
    terms = mod.training_step(batch, 0)
    assert set(terms) == {"chamfer_xyz", "chamfer_opacity", "chamfer_rgb"}
    with torch.no_grad():
        pred = m(m.input_rgb(batch["input_rgba"]), with_sr=False)["coarse"]
    p = {k: v.numpy().astype(np.float64) for k, v in pred.items()}
    q = {
        "xyz": batch["points"].numpy().astype(np.float64),
        "rgb": batch["point_colors"].numpy().astype(np.float64),
        "opacity": np.ones(batch["points"].shape[:2] + (1,)),
    }
    ref = brute_force_attribute_chamfer(p, q)
    for k, v in ref.items():
        assert float(terms[f"chamfer_{k}"].detach()) == pytest.approx(v, rel=1e-4, abs=1e-6)


def test_rendering_loss_is_l1_rgba_on_target_views(tiny_data):
    m, mod = model_and_module("coarse", tiny_data)
    batch = first_batch(mod)
    terms = mod.training_step(batch, 0)
    assert set(terms) == {"rgb", "alpha"}  # tiny preset: lambda_lpips = 0
    with torch.no_grad():
        g = canonical_gaussians(
            m(m.input_rgb(batch["input_rgba"]), with_sr=False)["coarse"], m.config.coarse_scale
        )
        r = render(g, batch_cameras(batch), background=batch["background"][:, None])
    torch.testing.assert_close(terms["rgb"].detach(), (r.rgb - batch["target_rgb"]).abs().mean())
    torch.testing.assert_close(
        terms["alpha"].detach(), (r.alpha - batch["target_alpha"]).abs().mean()
    )
    assert batch["target_rgb"].shape[1] == m.config.num_target_views


def test_samples_are_in_the_input_views_azimuth_frame(tiny_data):
    _, mod = model_and_module("coarse", tiny_data)
    item = mod.train_dataset()[0]
    c2w = torch.linalg.inv(item["input_viewmat"].double())
    x, _, z = c2w[:3, 3].tolist()
    assert abs(x) < 1e-5 and z > 0  # the input camera sits at azimuth 0


def test_stage_freezing(tiny_data):
    m, _ = model_and_module("sr", tiny_data)
    assert not any(p.requires_grad for p in m.coarse.parameters())
    assert all(p.requires_grad for p in m.sr.parameters())
    m, _ = model_and_module("coarse", tiny_data)
    assert not any(p.requires_grad for p in m.sr.parameters())
    assert all(p.requires_grad for p in m.coarse.parameters())
    with pytest.raises(GS3DError, match="super_resolution"):
        model_and_module("sr", tiny_data, super_resolution=False)
    with pytest.raises(GS3DError, match="stage"):
        model_and_module("refine", tiny_data)


def test_fitted_pseudo_labels(tiny_data, tmp_path):
    import shutil

    from gs_core.io import save_ply

    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    _, mod = model_and_module("warmup", root, warmup_target="fitted")
    with pytest.raises(GS3DError, match="gs3d fit"):
        mod.train_dataset()[0]
    g = torch.Generator().manual_seed(0)
    fits = {}
    for obj in mod.train_dataset().base.object_ids:
        means = torch.rand(50, 3, generator=g) - 0.5
        fits[obj] = Gaussians.from_colors(
            means, torch.rand(50, 3, generator=g), 0.02, torch.rand(50, generator=g)
        )
        save_ply(root / obj / "gaussians.ply", fits[obj])
    ds = mod.train_dataset()
    item = ds[0]
    fit = fits[item["object_id"]]
    T = item["space_transform"]
    ref = fit.means @ T[:3, :3].T + T[:3, 3]
    d = torch.cdist(item["label_xyz"], ref)
    j = d.argmin(1)
    assert float(d.min(1).values.max()) < 1e-3  # cdist rounding; neighbours are ~0.1 apart
    torch.testing.assert_close(item["label_opacity"][:, 0], fit.opacities[j], atol=1e-5, rtol=0)
    torch.testing.assert_close(item["label_rgb"], fit.colors[j], atol=1e-4, rtol=0)


def test_warmup_steps_reduce_the_chamfer_loss(tiny_data):
    m, mod = model_and_module("warmup", tiny_data)
    batch = first_batch(mod)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for step in range(30):
        torch.manual_seed(0)
        loss = sum(mod.training_step(batch, step).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_gs3d_train_runs_the_three_stages(tiny_data, tmp_path):
    from typer.testing import CliRunner

    from gs_core.cli.main import app

    runner = CliRunner()
    prev = None
    for stage in ("warmup", "coarse", "sr"):
        args = ["train", "--method", "agg", "--preset", "tiny", "--stage", stage, "--data", str(tiny_data),
                "--out", str(tmp_path / stage), "train.max_steps=2"]  # fmt: skip
        if prev is not None:
            args += ["--init", str(prev / "final")]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output + repr(r.exception)
        assert (tmp_path / stage / "final" / "config.json").is_file()
        prev = tmp_path / stage
    final = AGG.from_pretrained(prev / "final")
    first = AGG.from_pretrained(tmp_path / "warmup" / "final")
    # the sr stage changed the super-resolution weights but not the (frozen) coarse generator
    sd_a, sd_b = first.state_dict(), final.state_dict()
    assert any(not torch.equal(sd_a[k], sd_b[k]) for k in sd_a if k.startswith("sr."))
    coarse = AGG.from_pretrained(tmp_path / "coarse" / "final").state_dict()
    assert all(
        torch.equal(coarse[k], sd_b[k])
        for k in coarse
        if k.startswith("coarse.") and sd_b[k].is_floating_point()
    )


def test_resident_data_trains_the_stages_on_the_same_samples(tiny_data, tmp_path):
    """With ``resident_data`` the engine streams object indices and the step draws the samples
    on the device: same keys and layout as the DataLoader's batches, and the stages train."""
    import shutil

    from gs_core.data.resident import IndexDataset
    from gs_core.training import Trainer

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)  # the resident cache is written into the dataset
    m, loader = model_and_module("warmup", data)
    reference = first_batch(loader)
    torch.manual_seed(0)
    m = AGG(AGGConfig.preset("tiny", resident_data=True))
    for stage in ("warmup", "coarse", "sr"):
        mod = m.training_module(stage, data_dir=data)
        ds = mod.train_dataset()
        assert isinstance(ds, IndexDataset) and len(ds) == len(loader.train_dataset())
        batch = mod.resident_batch(torch.tensor([0, 1]))
        for key in ("input_rgba", "target_rgb", "target_alpha", "target_viewmats", "background"):
            assert batch[key].shape == reference[key].shape, key
        if stage == "warmup":
            assert batch["points"].shape == reference["points"].shape
        result = Trainer(mod, tmp_path / stage).fit()
        assert result.step == m.config.train.max_steps and np.isfinite(result.metrics["loss"])
        m.requires_grad_(True)
    fitted = AGG(AGGConfig.preset("tiny", resident_data=True, warmup_target="fitted"))
    with pytest.raises(GS3DError, match="warmup_target=points"):
        fitted.training_module("warmup", data_dir=data).train_dataset()


def test_gs3d_train_divergence_keeps_a_resumable_checkpoint(tiny_data, tmp_path, capsys):
    """lr=300 diverges: one line naming the step and the tensor, no final/ model, and the
    checkpoint kept is one that resumes with a sane rate and generates."""
    from gs_core.cli.main import main

    run = tmp_path / "run"
    args = ["train", "--method", "agg", "--preset", "tiny", "--stage", "coarse",
            "--data", str(tiny_data), "--out", str(run)]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main([*args, "lr=300", "train.max_steps=8", "train.checkpoint_every=2"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: step ") and "non-finite values in " in line
    assert "training stopped, the last good checkpoint is " in line
    assert not (run / "final").exists()
    kept = sorted(p.name for p in (run / "checkpoints").glob("step-????????"))
    assert kept and str(run / "checkpoints" / kept[-1]) in line

    # the kept weights generate, and training continues from them with a sane rate
    out = tmp_path / "g.ply"
    image = next(tiny_data.glob("*/images/*.png"))
    generate = ["generate", str(image), "--method", "agg", "-o", str(out),
            "--checkpoint", str(run / "checkpoints" / kept[-1] / "models" / "model")]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(generate)
    assert exit_.value.code in (0, None), capsys.readouterr().err
    assert out.is_file()
    step = int(kept[-1].split("-")[1])
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(run), "--resume", "lr=0.001", f"train.max_steps={step + 2}"])
    assert exit_.value.code in (0, None), capsys.readouterr().err
    err = capsys.readouterr().err
    assert f"resumed from {run / 'checkpoints' / kept[-1]}" in err
    assert "lr 300.0 -> 0.001" in err
    assert (run / "final" / "model.safetensors").is_file()
