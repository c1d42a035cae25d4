"""``benchmarks/geco.py`` runs end to end on a CPU (tiny preset) and reports where
``generate``'s time goes, in every mode it times, compiled ones included."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "geco.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_geco", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_rows_split_generate(bench):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    argv = ["--preset", "tiny", "--device", "cpu", "--dtype", "float32", "--inference-only"]
    try:
        rows = bench.main([*argv, "--repeats", "1", "--compile", "lgm"])
    finally:
        torch.set_num_threads(threads)
    by_mode: dict[str, dict[str, float]] = {}
    for what, mode, seconds in rows:
        assert seconds >= 0, (what, mode, seconds)
        by_mode.setdefault(mode, {})[what] = seconds
    assert set(by_mode) == {"eager", "compiled (lgm)"}
    for mode, got in by_mode.items():
        sections = ["condition", "generator", "reconstructor", "outside its sections"]
        assert {f"generate: {s}" for s in sections} <= set(got), mode
        assert got["end to end (generate)"] > 0
    # the compiled mode times every inference part again
    assert {"U-Net, CFG pair (write + read passes)", "LGM (six views -> Gaussians)"} <= set(
        by_mode["compiled (lgm)"]
    )
