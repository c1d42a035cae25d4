"""``benchmarks/procedural.py`` on a CPU: one row per dataset size in one run, at the teachers'
data settings, so a rate that falls with the dataset's size shows in a single table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).parents[1] / "benchmarks" / "procedural.py"


def test_procedural_benchmark_times_each_dataset_size_with_the_teachers_settings(capsys):
    spec = importlib.util.spec_from_file_location("bench_procedural", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--objects", "2", "3", "--views", "7", "--resolution", "16", "--antialias", "1"]
    argv += ["--camera-layout", "zero123pp", "--asymmetric", "--bare", "--workers", "1"]
    assert bench.main(argv + ["--no-raycast"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| gs3d data procedural")]
    # objects, processes, views per size, in the order asked
    assert [r.split("|")[2:5] for r in rows] == [[" 2 ", " 1 ", " 14 "], [" 3 ", " 1 ", " 21 "]]
    assert "'camera_layout': 'zero123pp'" in out and "'points': 0" in out
    assert "ray casting only" not in out
    assert bench.main(argv[:2] + ["--views", "2", "--resolution", "16", "--workers", "1"]) == 0
    assert "| ray casting only (render_views) | 2 | 1 | 4 |" in capsys.readouterr().out
