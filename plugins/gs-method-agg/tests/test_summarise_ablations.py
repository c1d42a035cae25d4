"""``scripts/summarise_ablations.py``: records of several leases join one Table 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gs_core.testing import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "summarise_ablations.py"
STEPS = {"warmup": 10, "coarse": 20, "sr": 5}


def _record(path: Path, psnr: dict[str, list[float]], steps=STEPS, first_seed=0) -> str:
    runs = [
        {
            "variant": v,
            "seed": first_seed + i,
            "psnr": p,
            "ssim": 0.8 + p / 1000,
            "per_category_psnr": {"mug": p - 1.0, "chair": p + 0.5 * i},
            "complete": True,
        }
        for v, ps in psnr.items()
        for i, p in enumerate(ps)
    ]
    path.write_text(json.dumps({"steps": steps, "runs": runs}))
    return str(path)


def test_leases_of_other_variants_join_one_table(tmp_path, capsys):
    script = load_script(SCRIPT, "agg_summarise_ablations")
    full = _record(tmp_path / "full.json", {"full": [19.0, 19.3, 19.1]})
    nosr = _record(tmp_path / "nosr.json", {"nosr": [18.5, 18.6, 18.4]})
    notex = _record(tmp_path / "notex.json", {"notex": [18.0, 18.8, 18.1]})
    out = tmp_path / "table2.json"
    joined = script.main([full, nosr, notex, "--out", str(out)])
    assert json.loads(out.read_text())["steps"] == STEPS
    s = joined["summary"]
    assert s["table"]["full"]["psnr"] == pytest.approx(19.1333, abs=1e-3)
    assert s["psnr"]["order_holds"] is True
    assert s["psnr"]["beyond_spread"] is False  # notex's seeds spread wider than its margin
    pair = joined["paired"]["full-nosr"]
    assert pair["seeds"] == [0, 1, 2]
    assert pair["psnr"]["per_seed"] == pytest.approx([0.5, 0.7, 0.7])
    assert pair["psnr"]["every_seed_gains"] is True
    assert pair["per_category_psnr_mean"]["mug"] == pytest.approx(pair["psnr"]["mean"])
    assert joined["paired"]["nosr-notex"]["psnr"]["per_seed"] == pytest.approx([0.5, -0.2, 0.3])
    text = capsys.readouterr().out
    assert "w/o Texture Field" in text and "+0.50 / +0.70 / +0.70" in text


def test_records_that_cannot_join_are_refused(tmp_path, capsys):
    script = load_script(SCRIPT, "agg_summarise_ablations")
    full = _record(tmp_path / "full.json", {"full": [19.0, 19.3]})
    other_steps = _record(tmp_path / "o.json", {"nosr": [18.5]}, steps={**STEPS, "sr": 6})
    with pytest.raises(SystemExit):
        script.main([full, other_steps])
    assert "equal steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([full, full])
    assert "seed 0 is also in" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / "bad.json")])
    assert "bad.json" in capsys.readouterr().err
    # later seeds of the same variant join (another lease's --seed-list)
    more = _record(tmp_path / "more.json", {"full": [19.2]}, first_seed=2)
    joined = script.main([full, more])
    assert joined["summary"]["table"]["full"]["seeds"] == [0, 1, 2]
