"""``benchmarks/compress3d_training.py`` runs on a CPU (tiny preset, tiny data): a rate per stage,
and ``--profile`` writes where the timed steps went."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "compress3d_training.py"

pytest.importorskip("gs_method_compress3d")


def test_compress3d_benchmark_reports_rates_and_profiles(tmp_path, capsys):
    import torch

    from gs_core.procedural.generator import ProceduralConfig, generate

    data = tmp_path / "data"
    generate(
        ProceduralConfig(objects=4, views=6, resolution=32, split="train"),
        data,
        workers=0,
        progress=False,
    )
    spec = importlib.util.spec_from_file_location("bench_compress3d", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        out = bench.main(
            [
                "--data", str(data), "--device", "cpu", "--preset", "tiny", "--steps", "4",
                "--skip", "1", "--stages", "autoencoder", "--profile", str(tmp_path / "prof"),
                "--profile-steps", "2",
            ]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    r = out["stages"]["autoencoder"]
    assert r["steps_s"] > 0 and 0 <= r["data_share"] < 1
    text = (tmp_path / "prof" / "autoencoder.txt").read_text()
    assert text.startswith("autoencoder: 2 profiled steps")  # of the 3 timed and "Self CPU" in text
    assert "aten::" in text  # operators were recorded between the timed steps
    assert not list((tmp_path / "prof").glob("*.trace.json"))  # traces only with --trace
    assert "| autoencoder | 2 |" in capsys.readouterr().out
