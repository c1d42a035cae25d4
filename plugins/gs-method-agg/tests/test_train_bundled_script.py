"""``scripts/train_bundled.py``'s bundled-model role on CPU (tiny preset): a fresh run, then a
run that continues its checkpoint, counting the scaling curve's GPU time on from the first."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_bundled.py"


@pytest.fixture(scope="module")
def script():
    from gs_core.testing import load_script

    return load_script(SCRIPT, "agg_train_bundled")


def _args(work: Path, out: Path, **kw) -> argparse.Namespace:
    base = dict(work=work, out=out, preset="tiny", set=[], device="cpu", seeds=0,
                deadline=time.time() + 600, continue_from=None, prior_gpu_s=0.0,
                stage_shares=None, train_seconds=100.0, size=None, steps=None, ablation_steps=None,
                no_main=False, variants=None)  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_stage_shares(script):
    a = _args(Path("w"), Path("o"))
    assert script.stage_shares(a) == script.STAGE_SHARES
    cont = script.stage_shares(_args(Path("w"), Path("o"), continue_from="ckpt"))
    assert set(cont) == {"coarse", "sr"} and sum(cont.values()) == pytest.approx(1.0)
    given = '{"warmup": 2, "coarse": 1, "sr": 1}'
    assert script.stage_shares(_args(Path("w"), Path("o"), stage_shares=given))["warmup"] == 0.5
    with pytest.raises(SystemExit, match="stage-shares"):
        script.stage_shares(_args(Path("w"), Path("o"), stage_shares='{"coarse": 1}'))


def _work_dir(tiny_data: Path, tmp_path: Path, monkeypatch) -> Path:
    """A work directory as the driver leaves it: training data and a one-object eval split."""
    from gs_core.procedural import ProceduralConfig, generate

    work = tmp_path / "work"
    shutil.copytree(tiny_data, work / "train-data")
    ev = ProceduralConfig.preset("eval", objects=1, resolution=32, antialias=1)
    generate(ev, work / "procedural-eval", workers=0, progress=False)
    monkeypatch.setenv("AGG_EVAL_OBJECTS", "1")
    return work


def test_main_role_fresh_then_continued(script, tiny_data, tmp_path, monkeypatch):
    work = _work_dir(tiny_data, tmp_path, monkeypatch)

    out1 = tmp_path / "out1"
    out1.mkdir()
    (work / "plan.json").write_text(json.dumps({"main": {"warmup": 2, "coarse": 2, "sr": 2}}))
    script.role_main(_args(work, out1), json.loads((work / "plan.json").read_text()))
    first = json.loads((out1 / "main.json").read_text())
    assert [s["stage"] for s in first["stages"]] == ["warmup", "coarse", "sr"]
    assert [p["label"] for p in first["curve"]] == ["coarse", "sr-half", "final-shipped"]
    trained = first["curve"][-1]["gpu_s"]
    assert trained > 0 and (out1 / "ckpt" / "config.json").is_file()

    from gs_method_agg import AGG

    loaded = []
    real = AGG.from_pretrained.__func__

    def spy(cls, path, *args, **kw):
        loaded.append(str(path))
        return real(cls, path, *args, **kw)

    monkeypatch.setattr(AGG, "from_pretrained", classmethod(spy))
    out2 = tmp_path / "out2"
    out2.mkdir()
    a = _args(work, out2, continue_from=str(out1 / "ckpt"), prior_gpu_s=trained)
    plan = {"main": {"coarse": 2, "sr": 2}}
    script.role_main(a, plan)
    assert loaded[0] == str(out1 / "ckpt")  # the run starts from the brought-back weights
    second = json.loads((out2 / "main.json").read_text())
    assert [s["stage"] for s in second["stages"]] == ["coarse", "sr"]  # no warm-up
    assert second["continued_from"] == str(out1 / "ckpt")
    gpu = [p["gpu_s"] for p in second["curve"]]
    assert all(g > trained for g in gpu) and gpu == sorted(gpu)


def test_ablation_role_trains_every_variant_and_scores_the_coarse_stage(
    script, tiny_data, tmp_path, monkeypatch
):
    work = _work_dir(tiny_data, tmp_path, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    a = _args(work, out, seeds=1, no_main=True, job=0, seed_list=None)
    script.role_ablations(a, {"ablation": {"warmup": 1, "coarse": 2, "sr": 1}})
    runs = json.loads((out / "ablations-0.json").read_text())["runs"]
    assert [r["variant"] for r in runs] == ["full", "nosr", "notex"]
    assert all(r["complete"] for r in runs)
    assert [[s["stage"] for s in r["stages"]] for r in runs] == [
        ["warmup", "coarse", "sr"], ["warmup", "coarse"], ["warmup", "coarse"]]  # fmt: skip
    assert [s["steps"] for s in runs[1]["stages"]] == [1, 3]  # equal steps: coarse takes sr's
    assert set(runs[0]["coarse_end"]) == {"psnr", "ssim"}
    assert "coarse_end" not in runs[1]
    merged = script.merge_ablations(out)
    assert merged["summary"]["sr_gain_paired"]["seeds"] == [0]


def test_model_sizes_grow_and_match_the_documented_counts(script):
    import torch

    from gs_method_agg import AGG, AGGConfig

    counts = {}
    for name, overrides in script.MODEL_SIZES.items():
        with torch.device("meta"):  # shapes only: the 48 M model costs nothing here
            model = AGG(AGGConfig.preset("small").with_overrides(overrides))
        counts[name] = sum(p.numel() for p in model.parameters())
        assert model.config.num_output_gaussians == 16_384  # only the networks change
    assert round(counts["1x"] / 1e6, 1) == 14.0  # the bundled model
    assert [round(counts[k] / 1e6, 1) for k in ("0.5x", "1.5x", "2x")] == [5.0, 28.4, 48.3]
    a = _args(Path("w"), Path("o"), preset="small", size="0.5x", set=["geometry.dim=96"])
    cfg = script.preset_config(a)
    assert (cfg.encoder.dim, cfg.geometry.dim) == (96, 96)  # --size, then --set, which wins


def test_steps_are_parsed_per_stage(script):
    a = _args(Path("w"), Path("o"), steps='{"warmup": 3, "coarse": 5, "sr": 2}')
    assert list(script.parse_steps(a).items()) == [("warmup", 3), ("coarse", 5), ("sr", 2)]
    cont = _args(Path("w"), Path("o"), steps='{"coarse": 5, "sr": 2}', continue_from="ckpt")
    assert script.parse_steps(cont) == {"coarse": 5, "sr": 2}
    plan = script.plan_steps(_args(Path("w"), Path("o"), steps=a.steps), bench=None)
    assert plan["main"] == {"warmup": 3, "coarse": 5, "sr": 2} and plan["ablation"] is None
    for bad in ('{"coarse": 5, "sr": 2}', '{"warmup": 0, "coarse": 5, "sr": 2}', "coarse=5"):
        with pytest.raises(SystemExit, match="--steps"):
            script.parse_steps(_args(Path("w"), Path("o"), steps=bad))


def test_data_from_links_another_runs_data(script, tmp_path):
    src = tmp_path / "data"
    (src / "train-data").mkdir(parents=True)
    (src / "procedural-eval").mkdir()
    work = tmp_path / "work"
    script.link_data(src, work)
    script.link_data(src, work)  # a restart finds its links
    assert (work / "train-data").resolve() == (src / "train-data").resolve()
    other = tmp_path / "other"
    (other / "train-data").mkdir(parents=True)
    with pytest.raises(SystemExit, match="procedural-eval"):
        script.link_data(other, tmp_path / "w2")
    with pytest.raises(SystemExit, match="not a link"):
        (tmp_path / "w3" / "train-data").mkdir(parents=True)
        script.link_data(src, tmp_path / "w3")


def _runs(psnr: dict[str, list[float]]) -> list[dict]:
    return [{"variant": v, "seed": i, "psnr": p, "ssim": 0.8 + p / 1000, "complete": True}
            for v, ps in psnr.items() for i, p in enumerate(ps)]  # fmt: skip


def test_table2_summary_reads_the_order_and_the_spread(script):
    clear = script.summarise_ablations(
        _runs({"full": [19.0, 19.2, 19.1], "nosr": [18.5, 18.6, 18.4], "notex": [18.0, 17.9, 18.1]})
    )
    assert clear["psnr"]["order_holds"] and clear["psnr"]["beyond_spread"]
    assert clear["table"]["full"]["psnr"] == pytest.approx(19.1)
    assert clear["psnr"]["margins"]["full-nosr"] == pytest.approx(0.6)
    # Same means, but one variant's seeds spread wider than a margin.
    noisy = script.summarise_ablations(
        _runs({"full": [18.1, 20.1, 19.1], "nosr": [18.5, 18.6, 18.4], "notex": [18.0, 17.9, 18.1]})
    )
    assert noisy["psnr"]["order_holds"] and not noisy["psnr"]["beyond_spread"]
    flipped = script.summarise_ablations(
        _runs({"full": [18.0, 18.1], "nosr": [18.5, 18.6], "notex": [17.0, 17.1]})
    )
    assert not flipped["psnr"]["order_holds"]
    one_seed = script.summarise_ablations(_runs({"full": [19.0], "nosr": [18.0], "notex": [17.0]}))
    assert one_seed["psnr"]["order_holds"] and not one_seed["psnr"]["beyond_spread"]
    runs = _runs({"full": [19.0, 19.2], "nosr": [18.0, 18.1], "notex": [17.0, 17.1]})
    runs[0]["complete"] = False  # a run the deadline cut is left out
    assert script.summarise_ablations(runs)["table"]["full"]["seeds"] == [1]


def test_table2_summary_pairs_the_full_model_with_its_coarse_stage(script):
    runs = _runs({"full": [19.0, 19.4, 18.8], "nosr": [18.5, 18.6, 18.4], "notex": [18, 18, 18]})
    assert "sr_gain_paired" not in script.summarise_ablations(runs)
    for r, before in zip(runs[:3], (18.5, 18.8, 18.4), strict=True):
        r["coarse_end"] = {"psnr": before, "ssim": 0.8}
    gain = script.summarise_ablations(runs)["sr_gain_paired"]
    assert gain["seeds"] == [0, 1, 2]
    assert gain["psnr"]["mean"] == pytest.approx(0.5)
    assert gain["psnr"]["std"] == pytest.approx(0.1)
    assert gain["psnr"]["every_seed_gains"]
    runs[1]["coarse_end"]["psnr"] = 19.6  # one seed loses by its sr stage
    assert not script.summarise_ablations(runs)["sr_gain_paired"]["psnr"]["every_seed_gains"]


def test_variants_select_table2_rows_and_the_summary_joins_those_present(script):
    a = _args(Path("w"), Path("o"), variants="nosr, full")
    assert script.ablation_variants(a) == ["full", "nosr"]  # the paper's order
    assert script.ablation_variants(_args(Path("w"), Path("o"))) == ["full", "nosr", "notex"]
    with pytest.raises(SystemExit, match="--variants: expected"):
        script.ablation_variants(_args(Path("w"), Path("o"), variants="full,nosuper"))
    two = script.summarise_ablations(_runs({"full": [19.0, 19.2], "nosr": [18.5, 18.4]}))
    assert two["psnr"]["margins"] == {"full-nosr": pytest.approx(0.65)}
    assert two["psnr"]["order_holds"] and two["psnr"]["beyond_spread"]
    assert "psnr" not in script.summarise_ablations(_runs({"full": [19.0, 19.2]}))


def test_ablation_jobs_are_merged(script, tmp_path):
    runs = _runs({"full": [19.0, 19.2], "nosr": [18.5, 18.6], "notex": [18.0, 17.9]})
    steps = {"warmup": 1, "coarse": 2, "sr": 1}
    for job, seed in ((0, 0), (1, 1)):
        mine = [r for r in runs if r["seed"] == seed]
        (tmp_path / f"ablations-{job}.json").write_text(json.dumps({"steps": steps, "runs": mine}))
    merged = script.merge_ablations(tmp_path)
    assert [(r["seed"], r["variant"]) for r in merged["runs"]][:3] == [
        (0, "full"), (0, "nosr"), (0, "notex")]  # fmt: skip
    assert merged["summary"]["psnr"]["order_holds"]
    assert json.loads((tmp_path / "ablations.json").read_text())["steps"] == steps
    assert script.merge_ablations(tmp_path / "none") is None


def test_step_plan_without_an_efficiency_check(script):
    given = '{"warmup": 1, "coarse": 2, "sr": 1}'
    a = _args(Path("w"), Path("o"), seeds=3, no_main=True, ablation_steps=given)
    assert not script.needs_rates(a)
    plan = script.plan_steps(a, bench=None)
    assert plan["main"] is None and plan["ablation"] == {"warmup": 1, "coarse": 2, "sr": 1}
    # A continued bundled model has no warm-up; the ablations start afresh and keep theirs.
    b = _args(Path("w"), Path("o"), seeds=3, steps='{"coarse": 5, "sr": 2}', continue_from="c",
              ablation_steps=given)  # fmt: skip
    assert script.plan_steps(b, bench=None)["ablation"]["warmup"] == 1
    assert script.needs_rates(_args(Path("w"), Path("o"), seeds=3, steps=given))
    with pytest.raises(SystemExit, match="--ablation-steps"):
        script.plan_steps(_args(Path("w"), Path("o"), seeds=3, no_main=True, ablation_steps="{}"),
                          bench=None)  # fmt: skip
