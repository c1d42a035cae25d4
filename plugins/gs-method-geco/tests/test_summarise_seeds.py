"""scripts/summarise_seeds.py: Table 2 over seeds from train_small.py results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "summarise_seeds.py"


def _script():
    from gs_core.testing import load_script

    return load_script(SCRIPT, "geco_summarise_seeds")


def _results(path: Path, seed: int, psnr: dict, ssim: float = 0.8) -> Path:
    gaussians = {
        name: {"psnr": {"all": value, "ring15": value}, "ssim": {"all": ssim + value / 1000}}
        for name, value in psnr.items()
    }
    path.write_text(
        json.dumps({"seed": seed, "gaussians": gaussians, "stages": {"stage1": {"steps": 767}}})
    )
    return path


def test_means_spreads_and_the_verdict(tmp_path, capsys):
    script = _script()
    files = [
        _results(
            tmp_path / f"r{s}.json",
            s,
            {
                "teacher_1step_lgm": 14.7 + d,
                "geco_without_stage2": 15.9 - d,
                "geco": 17.5 + d,
                "teacher_75step_lgm": 17.3,
            },
        )
        for s, d in enumerate((0.0, 0.1, -0.1))
    ]
    out = tmp_path / "summary.json"
    summary = script.main([*map(str, files), "--out", str(out)])
    row = summary["table"]["geco"]
    assert row["psnr"] == pytest.approx(17.5) and row["psnr_std"] == pytest.approx(0.1)
    assert row["psnr_runs"] == pytest.approx([17.5, 17.6, 17.4])
    psnr = summary["ordering"]["psnr"]
    assert psnr["order_holds"] and psnr["beyond_spread"]  # margins 1.2 / 1.6 dB, std 0.1
    assert [r["seed"] for r in summary["runs"]] == [0, 1, 2]
    assert json.loads(out.read_text())["ordering"]["psnr"]["order_holds"]
    assert "GECO w/o stage II" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # present: refused without --overwrite
        script.main([*map(str, files), "--out", str(out)])


def test_margins_inside_the_spread_and_a_single_run(tmp_path):
    script = _script()
    noisy = [
        _results(
            tmp_path / f"n{s}.json",
            s,
            {
                "teacher_1step_lgm": 15.0,
                "geco_without_stage2": 15.2 + d,
                "geco": 16.0,
                "teacher_75step_lgm": 16.0,
            },
        )
        for s, d in enumerate((0.0, 1.0, -1.0))
    ]
    v = script.main(list(map(str, noisy)))["ordering"]["psnr"]
    assert v["order_holds"] and not v["beyond_spread"]
    one = script.main([str(noisy[0])])
    assert one["table"]["geco"]["psnr_std"] is None
    assert one["ordering"]["psnr"]["beyond_spread"] is None


def test_bad_files_are_one_line_naming_the_file(tmp_path, capsys):
    script = _script()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"gaussians": {"geco": {"psnr": 1.0, "ssim": 0.5}}}))
    for path, words in ((bad, "not a readable"), (partial, "teacher_1step_lgm")):
        with pytest.raises(SystemExit) as e:
            script.main([str(path)])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert str(path) in err and words in err and len(err.splitlines()) == 1
