"""``benchmarks/priors.py``'s FLOP count of a guided call, at paper size on the meta device."""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "priors.py"


def test_guided_call_flops_count_both_branches_of_zero123():
    from gs_core.testing import load_script

    bench = load_script(SCRIPT, "priors_benchmark")
    guided = bench.PRIORS["zero123"]
    flops = bench.guided_call_flops(guided)
    single = bench.guided_call_flops(
        bench.Bench(guided.build, guided.steps, 1.0, guided.what, guided.scheduler_options)
    )
    # CFG batches [uncond; cond] into one forward: twice the work of the conditional branch.
    assert abs(flops["total"] / single["total"] - 2.0) < 1e-6
    # Zero123-XL's U-Net at 32x32 latents: about 0.18 TFLOP per branch, most of it convolutions.
    assert 0.1e12 < single["total"] < 0.3e12
    conv = sum(v for k, v in flops.items() if "convolution" in k)
    assert 0.5 < conv / flops["total"] < 0.8


def test_sdpa_backends_are_named_or_refused():
    import pytest
    import torch.nn.attention as attention

    from gs_core.testing import load_script

    bench = load_script(SCRIPT, "priors_benchmark")
    assert bench.sdpa_backends("cudnn, flash") == ["cudnn", "flash"]
    assert bench.sdpa_backends(None) == []
    for name in bench.SDPA_BACKENDS.values():
        assert hasattr(attention.SDPBackend, name)
    with pytest.raises(SystemExit, match="unknown \\['fa3'\\]"):
        bench.sdpa_backends("flash,fa3")


def test_compile_modes_are_torch_compile_modes_without_its_cuda_graphs():
    import torch._inductor

    from gs_core.testing import load_script

    bench = load_script(SCRIPT, "priors_benchmark")
    modes = torch._inductor.list_mode_options()
    for mode in bench.COMPILE_MODES:
        assert mode in modes
        # The graphed rows record their own CUDA graph around the compiled U-Net.
        assert not modes[mode].get("triton.cudagraphs", False)
