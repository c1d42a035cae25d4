"""``scripts/train_small.py`` runs end to end on CPU with the tiny preset and a tiny teacher."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_small.py"


def test_train_small_tiny(tiny_teacher_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("dd3g_train_small", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "out"
    res = mod.main(
        [
            "--teacher",
            str(tiny_teacher_dir),
            "--out",
            str(out),
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--student-images",
            "3",
            "--eval-objects",
            "2",
            "--ddim-steps",
            "2",
            "--variants",
            "pepd_joint,pd_es,splatter_es,hybrid_es",
            "--device",
            "cpu",
        ]
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved["variants"].keys() == {"pepd_joint", "pd_es", "splatter_es", "hybrid_es"}
    assert {"table2_splatter_below_pd", "table2_hybrid_below_splatter"} <= set(saved)
    assert saved["missing"] == {}
    for v in saved["variants"].values():
        assert 0 < v["psnr"] < 60 and -1 <= v["ssim"] <= 1
        assert len(v["per_object"]) == 2
    assert res["quadruples"] == 3 and saved["protocol"] == "ring12+alignment"
    shards = list((out / "checkpoints" / "pepd_joint").glob("*.safetensors"))
    assert shards and all(s.stat().st_size <= 16 * 2**20 for s in shards)
