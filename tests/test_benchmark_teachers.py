"""``benchmarks/teachers.py`` runs on a CPU (tiny preset): every row has its arithmetic rate from
the one step counted per prior, and ``--profile`` says where a step's time goes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).parents[1] / "benchmarks" / "teachers.py"


def test_teacher_benchmark_reports_rates_and_profiles(capsys):
    import torch

    spec = importlib.util.spec_from_file_location("bench_teachers", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    argv = ["--preset", "tiny", "--device", "cpu", "--priors", "zero123", "--steps", "1"]
    try:
        rows = bench.main(
            [*argv, "--warmup", "1", "--variants", "batch2x,default", "--profile", "3"]
        )
    finally:
        torch.set_num_threads(threads)
    assert [r["variant"] for r in rows] == ["batch2x", "default"]
    # batch2x is eager: it counts the prior's work, and both rows get a rate from it
    assert all(r["tflop_per_s"] > 0 for r in rows)
    per_sample = [r["tflop_per_s"] / r["samples_per_s"] for r in rows]
    assert abs(per_sample[0] - per_sample[1]) < 1e-9 * per_sample[0] + 1e-18
    out = capsys.readouterr().out
    assert "where zero123 default's step goes" in out and "Self CPU" in out
    assert "| GFLOP / sample | TFLOP/s |" in out


def test_cudnn_benchmark_variant_times_with_the_flag_on_and_restores_it(monkeypatch):
    import torch

    spec = importlib.util.spec_from_file_location("bench_teachers", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    seen = []
    real = bench.run_steps

    def spy(trainer, steps, device):
        seen.append(torch.backends.cudnn.benchmark)
        return real(trainer, steps, device)

    monkeypatch.setattr(bench, "run_steps", spy)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    argv = ["--preset", "tiny", "--device", "cpu", "--priors", "zero123", "--steps", "1"]
    try:
        rows = bench.main([*argv, "--warmup", "1", "--variants", "default,cudnn-benchmark"])
    finally:
        torch.set_num_threads(threads)
    assert [r["variant"] for r in rows] == ["default", "cudnn-benchmark"]
    # warm-up and timed steps: off for default; on for cudnn-benchmark; the counted step off
    assert seen[:2] == [False, False] and seen[-2:] == [True, True]
    assert torch.backends.cudnn.benchmark is False
