"""Evaluation harness: protocols, frame alignment, metric plumbing and metric values checked
against independent computations (PSNR by formula, SSIM by a numpy implementation of Wang et al.)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gs_core import Gaussians
from gs_core.cameras import Cameras
from gs_core.data import load_object_views, space_transform
from gs_core.errors import GS3DError, WeightsNotFoundError
from gs_core.evaluation import (
    RING15,
    ZERO123PP,
    EvalConfig,
    MethodPredictor,
    PlyFolderPredictor,
    evaluate,
    select_views,
)
from gs_core.evaluation import metrics as metrics_mod
from gs_core.io import load_point_cloud, save_ply
from gs_core.plugins.specs import MetricSpec
from gs_core.procedural import ProceduralConfig, generate


@pytest.fixture(scope="module")
def protocol_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("evalds") / "ds"
    cfg = ProceduralConfig.preset(
        "eval", objects=2, views=3, resolution=24, points=3000, antialias=2
    )
    generate(cfg, out, workers=0, progress=False)
    return out


def _point_gaussians(obj_dir, T=None) -> Gaussians:
    """Isotropic Gaussians on the object's surface points, optionally moved by T [4, 4]."""
    pts, cols = load_point_cloud(obj_dir / "points.ply")
    if T is not None:
        T = torch.as_tensor(T, dtype=torch.float32)
        pts = pts @ T[:3, :3].T + T[:3, 3]
    return Gaussians.from_colors(pts, cols, scales=0.012, opacities=0.9)


@pytest.fixture(scope="module")
def world_preds(protocol_ds, tmp_path_factory):
    d = tmp_path_factory.mktemp("preds")
    for oid in ("mug_00000", "table_00001"):
        save_ply(d / f"{oid}.ply", _point_gaussians(protocol_ds / oid))
    return d


def test_protocol_constants():
    assert len(RING15) == 15 and {e for _, e in RING15} == {0.0}
    assert [a for a, _ in RING15] == [24.0 * k for k in range(15)]
    assert ZERO123PP == (
        (30.0, 30.0),
        (90.0, -20.0),
        (150.0, 30.0),
        (210.0, -20.0),
        (270.0, 30.0),
        (330.0, -20.0),
    )


def _centers(views, radius=2.0):
    out = []
    for az, el in views:
        a, e = math.radians(az), math.radians(el)
        out.append(
            [
                radius * math.cos(e) * math.sin(a),
                radius * math.sin(e),
                radius * math.cos(e) * math.cos(a),
            ]
        )
    return np.asarray(out)


def test_select_views_relative_to_input_azimuth():
    base = 40.0
    views = (
        [(base, 0.0)]
        + [(base + a + 0.5, e) for a, e in RING15]
        + [(base + a, e - 0.3) for a, e in ZERO123PP]
    )
    rng = np.random.default_rng(0)
    order = rng.permutation(len(views))
    centers = _centers([views[i] for i in order])
    pos = {int(o): k for k, o in enumerate(order)}  # original index -> shuffled position
    sel = select_views(centers, "gso", input_index=pos[0])
    assert sel.groups["ring15"] == [pos[i] for i in range(1, 16)]
    assert sel.groups["zero123pp"] == [pos[i] for i in range(16, 22)]
    assert sel.input_index not in sel.targets
    with pytest.raises(GS3DError, match="azimuth 90 deg .* elevation -20 deg"):
        select_views(
            np.delete(centers, pos[17], 0), "zero123pp", input_index=pos[0] - (pos[0] > pos[17])
        )
    r1 = select_views(centers, "random", input_index=0, n_random=5, seed=3)
    assert r1.groups == select_views(centers, "random", input_index=0, n_random=5, seed=3).groups
    assert len(r1.targets) == 5 and 0 not in r1.targets
    assert select_views(centers, "all", input_index=4).targets == [
        i for i in range(len(views)) if i != 4
    ]
    # Default input: the frame nearest azimuth 0 / elevation 0.
    c = _centers([(90, 0), (3, 2), (180, 0)])
    assert select_views(c, "all").input_index == 1


def _ssim_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 SSIM: 11x11 Gaussian window (sigma 1.5), valid region, mean over channels."""
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    g /= g.sum()

    def filt(img):
        img = np.apply_along_axis(lambda m: np.convolve(m, g, mode="valid"), 0, img)
        return np.apply_along_axis(lambda m: np.convolve(m, g, mode="valid"), 1, img)

    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for c in range(x.shape[-1]):
        a, b = x[..., c], y[..., c]
        mu_a, mu_b = filt(a), filt(b)
        va = filt(a * a) - mu_a**2
        vb = filt(b * b) - mu_b**2
        cov = filt(a * b) - mu_a * mu_b
        m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
        vals.append(m.mean())
    return float(np.mean(vals))


def test_scores_match_independent_psnr_and_ssim(protocol_ds, world_preds, tmp_path):
    from gs_core.rendering import render

    cfg = EvalConfig(protocol="gso", resolution=24, metrics=["psnr", "ssim"], frame="world")
    report = evaluate(
        PlyFolderPredictor(world_preds), protocol_ds, "test", cfg, out=tmp_path / "r", label="pts"
    )
    assert report["num_objects"] == 2
    for obj in report["objects"]:
        oid = obj["object_id"]
        views = load_object_views(protocol_ds / oid, 24)
        assert obj["input_index"] == 0
        assert obj["targets"]["ring15"] == list(range(1, 16))
        assert obj["targets"]["zero123pp"] == list(range(16, 22))
        g = _point_gaussians(protocol_ds / oid)
        idx = torch.tensor(obj["targets"]["ring15"] + obj["targets"]["zero123pp"])
        pred = render(g, views.cameras.select(idx), background=1.0).rgb.clamp(0, 1).double().numpy()
        gt = views.rgba[idx.numpy()].astype(np.float64) / 255
        gt = gt[..., :3] * gt[..., 3:] + (1 - gt[..., 3:])
        mse = ((pred - gt) ** 2).reshape(len(idx), -1).mean(1)
        psnr = 10 * np.log10(1 / mse)
        ssim = np.array([_ssim_numpy(pred[k], gt[k]) for k in range(len(idx))])
        assert obj["scores"]["psnr"]["ring15"] == pytest.approx(psnr[:15].mean(), abs=1e-3)
        assert obj["scores"]["psnr"]["zero123pp"] == pytest.approx(psnr[15:].mean(), abs=1e-3)
        assert obj["scores"]["psnr"]["all"] == pytest.approx(psnr.mean(), abs=1e-3)
        assert obj["scores"]["ssim"]["all"] == pytest.approx(ssim.mean(), abs=1e-4)
    mean = report["mean"]["psnr"]["all"]
    assert mean == pytest.approx(np.mean([o["scores"]["psnr"]["all"] for o in report["objects"]]))
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["mean"]["psnr"]["all"] == pytest.approx(mean)
    md = (tmp_path / "r" / "results.md").read_text()
    assert "| **mean** |" in md and "psnr (ring15)" in md and "mug_00000" in md
    from PIL import Image

    # the no-3D references, by formula: the white background and the input at every target
    refs = {"blank": [], "input_copied": []}
    for obj in report["objects"]:
        views = load_object_views(protocol_ds / obj["object_id"], 24)
        rgba = views.rgba.astype(np.float64) / 255
        rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        gt = rgb[obj["targets"]["ring15"] + obj["targets"]["zero123pp"]]
        # ring15's first target is the input's own pose: left out of the references
        keep = ~(gt == rgb[0]).reshape(len(gt), -1).all(1)
        assert keep.sum() == len(gt) - 1
        for name, ref in (("blank", np.ones_like(gt)), ("input_copied", rgb[[0] * len(gt)])):
            mse = ((ref - gt) ** 2).reshape(len(gt), -1).mean(1)
            refs[name].append((10 * np.log10(1 / mse[keep])).mean())
            assert obj["references"][name]["psnr"]["all"] == pytest.approx(refs[name][-1], abs=1e-3)
    for name, vals in refs.items():
        assert saved["references"][name]["psnr"]["all"] == pytest.approx(np.mean(vals), abs=1e-3)
        assert "ssim" in saved["references"][name]
    assert "| *reference: the input image at every target* |" in md
    sheet = Image.open(tmp_path / "r" / "sheets" / "mug_00000.png")
    # 21 targets in rows of 8 (+ the input column): 3 x (gt row + prediction row), 9 columns.
    assert sheet.size == (9 * 26 + 2, 6 * 26 + 2)
    with pytest.raises(Exception, match="already exists"):
        evaluate(PlyFolderPredictor(world_preds), protocol_ds, "test", cfg, out=tmp_path / "r")


@pytest.mark.parametrize("frame", ["azimuth", "camera"])
def test_frame_alignment_matches_world_evaluation(
    protocol_ds, world_preds, tmp_path, frame, monkeypatch
):
    """A prediction expressed in the input-aligned frame renders exactly like the world one."""
    import gs_core.evaluation.harness as harness

    captured = []
    real = harness.render_targets
    monkeypatch.setattr(
        harness, "render_targets", lambda *a, **k: captured.append(real(*a, **k)) or captured[-1]
    )
    input_index = 22  # a random view: azimuth and elevation away from 0
    base = EvalConfig(
        protocol="random",
        n_random=4,
        resolution=24,
        metrics=["psnr"],
        input_index=input_index,
        sheets=False,
    )
    ref = evaluate(PlyFolderPredictor(world_preds), protocol_ds, "test", base)
    d = tmp_path / frame
    d.mkdir()
    for oid in ("mug_00000", "table_00001"):
        c2w = load_object_views(protocol_ds / oid, 24).cameras.camtoworlds.double().numpy()
        T = space_transform(frame, c2w[input_index])
        assert not np.allclose(T, np.eye(4))
        save_ply(d / f"{oid}.ply", _point_gaussians(protocol_ds / oid, T))
    got = evaluate(
        PlyFolderPredictor(d), protocol_ds, "test", base.with_overrides({"frame": frame})
    )
    for a, b in zip(ref["objects"], got["objects"], strict=True):
        assert b["scores"]["psnr"]["random"] == pytest.approx(
            a["scores"]["psnr"]["random"], abs=0.02
        )
    for a, b in zip(captured[0:2], captured[2:4], strict=True):
        assert (a - b).abs().max() < 0.02
    # Read as if it were in the world frame, the same prediction is misplaced.
    evaluate(PlyFolderPredictor(d), protocol_ds, "test", base)
    for a, b in zip(captured[0:2], captured[4:6], strict=True):
        assert (a - b).abs().max() > 0.3


def test_metric_plumbing_pairs_and_unavailable(protocol_ds, world_preds, monkeypatch):
    def mae_factory(device):
        return lambda p, t: (p - t).abs().flatten(1).mean(1)

    def broken(device):
        raise WeightsNotFoundError("weights.bin missing; download it to X")

    specs = {
        "mae": MetricSpec(
            "mae",
            "mean abs error",
            mae_factory,
            higher_is_better=False,
            pairs=("render-gt", "render-input"),
        ),
        "broken": MetricSpec("broken", "needs weights", broken),
    }
    monkeypatch.setattr(metrics_mod, "available_metrics", lambda: specs)
    cfg = EvalConfig(protocol="zero123pp", resolution=24, sheets=False)
    rep = evaluate(PlyFolderPredictor(world_preds), protocol_ds, "test", cfg)
    assert set(rep["mean"]) == {"mae", "mae_input", "seconds"}
    assert "weights.bin missing" in rep["unavailable_metrics"]["broken"]
    assert rep["metrics"]["mae"]["higher_is_better"] is False
    o = rep["objects"][0]
    assert 0 < o["scores"]["mae"]["zero123pp"] < o["scores"]["mae_input"]["zero123pp"]
    with pytest.raises(GS3DError, match="metric 'broken'.*weights.bin missing"):
        evaluate(
            PlyFolderPredictor(world_preds),
            protocol_ds,
            "test",
            cfg.with_overrides({"metrics": ["broken"]}),
        )
    with pytest.raises(GS3DError, match="unknown metric"):
        evaluate(
            PlyFolderPredictor(world_preds),
            protocol_ds,
            "test",
            cfg.with_overrides({"metrics": ["fid"]}),
        )


def test_method_predictor_times_generation_and_missing_predictions(
    protocol_ds, world_preds, tmp_path
):
    from gs_core.config import Config
    from gs_core.method import GenerationOutput, Method

    class EchoConfig(Config):
        pass

    class Echo(Method):
        """Returns the object's own surface points in the input-azimuth frame (= world here)."""

        config_class = EchoConfig
        name = "echo"

        def __init__(self, config, gaussians):
            super().__init__(config)
            self.g = gaussians
            self.seen = []

        def generate(self, images, **kw):
            self.check_images(images)
            self.seen.append(tuple(images.shape))
            return GenerationOutput(gaussians=_batch(self.g), timings={"net": 0.1})

    def _batch(g):
        return Gaussians(
            g.means[None], g.quats[None], g.scales[None], g.opacities[None], g.sh[None]
        )

    m = Echo(EchoConfig(), _point_gaussians(protocol_ds / "mug_00000"))
    rep = evaluate(
        MethodPredictor(m),
        protocol_ds,
        "test",
        EvalConfig(
            protocol="ring15", resolution=24, metrics=["psnr"], frame="azimuth", sheets=False
        ),
        categories=["mug"],
    )
    assert m.seen == [(1, 4, 24, 24)]
    o = rep["objects"][0]
    assert (
        o["seconds"] > 0 and o["timings"] == {"net": 0.1} and rep["mean"]["seconds"] == o["seconds"]
    )
    # The input is the azimuth-0 view, so the azimuth frame is the world frame here.
    ref = evaluate(
        PlyFolderPredictor(world_preds),
        protocol_ds,
        "test",
        EvalConfig(protocol="ring15", resolution=24, metrics=["psnr"], sheets=False),
        categories=["mug"],
    )
    assert o["scores"]["psnr"]["ring15"] == pytest.approx(
        ref["objects"][0]["scores"]["psnr"]["ring15"], abs=1e-4
    )
    assert ref["objects"][0]["seconds"] is None
    with pytest.raises(Exception, match="no prediction for object 'table_00001'"):
        evaluate(
            PlyFolderPredictor(tmp_path),
            protocol_ds,
            "test",
            EvalConfig(resolution=24, metrics=["psnr"]),
            categories=["table"],
        )


def test_cli_eval(protocol_ds, world_preds, tmp_path):
    from gs_core.cli.main import main

    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as e:
        main(
            [
                "eval",
                "--data",
                str(protocol_ds),
                "--predictions",
                str(world_preds),
                "--out",
                str(out),
                "--protocol",
                "ring15",
                "--resolution",
                "24",
                "--metrics",
                "psnr",
                "--no-sheets",
                "--device",
                "cpu",
            ]
        )
    assert e.value.code == 0
    rep = json.loads((out / "results.json").read_text())
    assert rep["config"]["frame"] == "world" and rep["num_objects"] == 2
    assert rep["references"]["input_copied"]["psnr"]["ring15"] > 0
    args = ["eval", "--data", str(protocol_ds), "--predictions", str(world_preds)]
    args += ["--metrics", "psnr", "--no-sheets", "--device", "cpu", "--resolution", "24"]
    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(out / "n"), "--no-references"])
    assert e.value.code == 0
    assert "references" not in json.loads((out / "n" / "results.json").read_text())
    with pytest.raises(SystemExit) as e:
        main(["eval", "--data", str(protocol_ds), "--out", str(out / "x")])
    assert e.value.code == 2


def test_render_targets_uses_camera_subset():
    from gs_core.evaluation import render_targets

    g = Gaussians.from_colors(
        torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]]), scales=0.2, opacities=1.0
    )
    cams = Cameras.orbit([0, 90, 180], [0, 0, 0], radius=2.0, width=12, height=12)
    img = render_targets(g, cams, torch.ones(3), chunk=2)
    assert img.shape == (3, 12, 12, 3)
    assert img[:, 6, 6, 0].min() > 0.9 and img[:, 6, 6, 1].max() < 0.2 and img[:, 0, 0].min() > 0.99


pytestmark = pytest.mark.usefixtures("one_thread")


def test_load_method_from_registry_checkpoint(tmp_path, monkeypatch):
    import gs_core.plugins.registry as reg
    from gs_core import CORE_API_VERSION
    from gs_core.config import Config
    from gs_core.loading import load_method
    from gs_core.method import Method
    from gs_core.plugins.specs import MethodSpec

    class ScaleConfig(Config):
        width: int = 3

    class Scale(Method):
        config_class = ScaleConfig
        name = "scale-test"

        def __init__(self, config):
            super().__init__(config)
            self.w = torch.nn.Parameter(torch.zeros(config.width))

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    fresh.register_method(MethodSpec("scale-test", "test", ScaleConfig, Scale, CORE_API_VERSION))
    trained = Scale(ScaleConfig(width=5))
    with torch.no_grad():
        trained.w.copy_(torch.arange(5.0))
    trained.save_pretrained(tmp_path / "ckpt")
    m = load_method("scale-test", checkpoint=str(tmp_path / "ckpt"))
    assert isinstance(m, Scale) and m.config.width == 5 and torch.equal(m.w, torch.arange(5.0))
    assert not m.training
    with pytest.raises(GS3DError, match="no default checkpoint"):
        load_method("scale-test")
    with pytest.raises(WeightsNotFoundError, match="no such checkpoint directory"):
        load_method("scale-test", checkpoint=str(tmp_path / "missing"))
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="model.safetensors"):
        load_method("scale-test", checkpoint=str(tmp_path / "ckpt"))


def _noisy_method(obj_dir):
    """A stochastic method class: the object's surface Gaussians with seeded noise on the means."""
    from gs_core.config import Config
    from gs_core.method import GenerationOutput, Method

    class NoisyConfig(Config):
        sigma: float = 0.0
        presets = {"paper": {"sigma": 0.0}, "noisy": {"sigma": 0.03}}

    base = _point_gaussians(obj_dir)

    class Noisy(Method):
        config_class = NoisyConfig
        name = "noisy"

        def __init__(self, config):
            super().__init__(config)
            self.seeds = []

        def generate(self, images, seed=None, **kw):
            self.seeds.append(seed)
            gen = torch.Generator().manual_seed(1000 if seed is None else seed)
            noise = torch.randn(base.means.shape, generator=gen) * self.config.sigma
            g = base
            return GenerationOutput(
                gaussians=Gaussians(
                    (g.means + noise)[None],
                    g.quats[None],
                    g.scales[None],
                    g.opacities[None],
                    g.sh[None],
                )  # fmt: skip
            )

    return NoisyConfig, Noisy


def test_seeds_report_mean_and_spread(protocol_ds, world_preds):
    from gs_core.evaluation import markdown_table

    cfg_cls, cls = _noisy_method(protocol_ds / "mug_00000")
    m = cls(cfg_cls.preset("noisy"))
    cfg = EvalConfig(protocol="ring15", resolution=24, metrics=["psnr"], sheets=False, seeds=3)
    rep = evaluate(MethodPredictor(m), protocol_ds, "test", cfg, categories=["mug"])
    assert m.seeds == [0, 1, 2]
    o = rep["objects"][0]
    per_seed = [s["psnr"]["ring15"] for s in o["per_seed"]]
    assert o["seeds"] == [0, 1, 2] and len(set(per_seed)) == 3  # the seed changes the output
    assert o["scores"]["psnr"]["ring15"] == pytest.approx(np.mean(per_seed))
    assert o["scores_std"]["psnr"]["ring15"] == pytest.approx(np.std(per_seed, ddof=1))
    # one object: the dataset mean per seed is that object's score, its spread the same std
    assert [s["psnr"]["ring15"] for s in rep["mean_per_seed"]] == pytest.approx(per_seed)
    assert rep["std"]["psnr"]["ring15"] == pytest.approx(np.std(per_seed, ddof=1))
    assert rep["mean"]["psnr"]["ring15"] == pytest.approx(np.mean(per_seed))
    assert "| **std over 3 seeds** |" in markdown_table(rep)
    # the same seed gives the same score; without seeds the report keeps its old keys only
    again = evaluate(MethodPredictor(m), protocol_ds, "test", cfg, categories=["mug"])
    assert again["objects"][0]["per_seed"] == o["per_seed"]
    plain = evaluate(
        MethodPredictor(m, seed=1), protocol_ds, "test", cfg.with_overrides({"seeds": None}),
        categories=["mug"],
    )  # fmt: skip
    assert "std" not in plain and "per_seed" not in plain["objects"][0] and m.seeds[-1] == 1
    assert plain["objects"][0]["scores"]["psnr"]["ring15"] == pytest.approx(per_seed[1])
    with pytest.raises(GS3DError, match="seeds apply to methods"):
        evaluate(PlyFolderPredictor(world_preds), protocol_ds, "test", cfg, categories=["mug"])


def test_cli_eval_preset_seeds_and_output_frame(protocol_ds, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import gs_core.plugins.registry as reg
    from gs_core import CORE_API_VERSION
    from gs_core.cli.main import app
    from gs_core.plugins.specs import MethodSpec

    cfg_cls, cls = _noisy_method(protocol_ds / "mug_00000")
    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    common = dict(config_class=cfg_cls, factory=cls, core_api=CORE_API_VERSION)
    fresh.register_method(
        MethodSpec("noisy", "test", output_frame="camera", has_weights=False, **common)
    )
    fresh.register_method(MethodSpec("noisy-trained", "test", **common))
    base = ["eval", "--data", protocol_ds, "--protocol", "ring15", "--resolution", 24,
            "--metrics", "psnr", "--no-sheets", "--categories", "mug", "--device", "cpu"]  # fmt: skip

    def run(*args):
        return CliRunner().invoke(app, list(map(str, [*base, *args])))

    # a method without weights of its own: its paper preset, no warning, its own output frame
    r = run("--method", "noisy", "--out", tmp_path / "a", "--seeds", 2, "--set", "sigma=0.03")
    assert r.exit_code == 0, r.output + repr(r.exception)
    rep = json.loads((tmp_path / "a" / "results.json").read_text())
    assert rep["config"]["frame"] == "camera" and rep["seeds"] == [0, 1]
    assert rep["std"]["psnr"]["ring15"] > 0 and "warning" not in r.output
    assert "mean ± std over 2 seeds" in " ".join(r.output.split())
    # a trained method built from a preset: one yellow warning line about random weights
    r = run("--method", "noisy-trained", "--preset", "paper", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output + repr(r.exception)
    text = " ".join(r.output.split())
    assert "warning: method 'noisy-trained' built from preset 'paper'" in text
    assert "random weights" in text
    assert json.loads((tmp_path / "b" / "results.json").read_text())["config"]["frame"] == "azimuth"
    r = run(
        "--method", "noisy", "--checkpoint", tmp_path, "--preset", "paper", "--out", tmp_path / "c"
    )
    assert r.exit_code != 0 and "not both" in str(r.exception)
    r = run("--predictions", tmp_path, "--seeds", 2, "--out", tmp_path / "d")
    assert r.exit_code != 0 and "--seeds needs --method" in str(r.exception)
    r = run("--method", "noisy", "--backend", "gsplat", "--out", tmp_path / "e")
    assert r.exit_code != 0 and type(r.exception).__name__ == "BackendUnavailableError"


def test_references_can_be_left_out(protocol_ds, world_preds):
    cfg = EvalConfig(protocol="gso", resolution=24, metrics=["psnr"], references=False)
    report = evaluate(PlyFolderPredictor(world_preds), protocol_ds, "test", cfg, label="pts")
    assert "references" not in report
    assert all("references" not in o for o in report["objects"])
