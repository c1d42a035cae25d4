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
                stage_shares=None, train_seconds=100.0, size=None, steps=None)  # fmt: skip
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


def test_main_role_fresh_then_continued(script, tiny_data, tmp_path, monkeypatch):
    from gs_core.procedural import ProceduralConfig, generate

    work = tmp_path / "work"
    shutil.copytree(tiny_data, work / "train-data")
    ev = ProceduralConfig.preset("eval", objects=1, resolution=32, antialias=1)
    generate(ev, work / "procedural-eval", workers=0, progress=False)
    monkeypatch.setenv("AGG_EVAL_OBJECTS", "1")

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
