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


def test_kernel_kinds_of_real_kernel_names():
    from gs_core.testing import load_script

    bench = load_script(SCRIPT, "priors_benchmark")
    named = {
        "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x64": "attention",
        "fmha_cutlassF_bf16_aligned_64x64_rf_sm80": "attention",
        "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc": "convolution",
        "triton_tem_fused_convolution_12": "convolution",
        "nvjet_tst_128x256_64x4_2x1_v_bz_coopB_NNT": "matmul",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64": "matmul",
        "triton_tem_fused_addmm_7": "matmul",
        # Fused pointwise kernels name the ops they touch; they stay fused Triton.
        "triton_poi_fused__scaled_dot_product_cudnn_attention_clone_3": "fused Triton",
        "triton_red_fused_convolution_native_group_norm_5": "fused Triton",
        "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl>": "other",
    }
    for name, kind in named.items():
        assert bench.kernel_kind(name) == kind, name


def test_kernel_time_by_kind_is_per_call_and_sums():
    import pytest

    from gs_core.testing import load_script

    bench = load_script(SCRIPT, "priors_benchmark")
    kernels = [("nvjet_tst_a", 3000.0), ("triton_poi_fused_add_0", 1000.0), ("memcpy", 2000.0)]
    per_call = bench.kernel_time_by_kind(kernels, calls=2)
    assert per_call["matmul"] == pytest.approx(1.5)
    assert per_call["fused Triton"] == pytest.approx(0.5)
    assert per_call["other"] == pytest.approx(1.0)
    assert per_call["attention"] == per_call["convolution"] == 0.0
    assert per_call["total"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="calls"):
        bench.kernel_time_by_kind(kernels, calls=0)


def test_inductor_recipes_are_inductor_settings_and_join():
    import pytest
    import torch._inductor.config as inductor_config

    from gs_core.testing import load_script

    bench = load_script(SCRIPT, "priors_benchmark")
    for settings in bench.INDUCTOR_RECIPES.values():
        for key, value in settings.items():
            # A renamed Inductor setting would otherwise be ignored or refused mid-lease.
            assert isinstance(getattr(inductor_config, key), bool), key
            assert getattr(inductor_config, key) != value, f"{key} is already Inductor's default"
    joined = bench.inductor_recipe("diffusers+freezing")
    assert joined["freezing"] is True and joined["conv_1x1_as_mm"] is True
    with pytest.raises(SystemExit, match="unknown 'fast'"):
        bench.inductor_recipe("diffusers+fast")
    # A recipe on a mode spells the mode out as options (torch.compile takes one or the other).
    assert bench.compile_options(None, {}) == {"mode": None}
    on_mode = bench.compile_options("max-autotune-no-cudagraphs", {"freezing": True})
    assert set(on_mode) == {"options"}
    assert on_mode["options"]["max_autotune"] is True and on_mode["options"]["freezing"] is True


def test_profile_table_pairs_eager_kernels_with_the_graphed_call():
    from gs_core.testing import load_script

    bench = load_script(SCRIPT, "priors_benchmark")
    kernels = bench.kernel_time_by_kind([("nvjet_x", 10_000.0), ("fmha_y", 6_000.0)], calls=1)
    rows = [
        ("P", 1.0, "eager", 40.0, 75, 3.0, kernels, 1e12),
        ("P", 1.0, "graphed", 20.0, 75, 1.5, None, 1e12),
        ("P", 1.0, "eager, compiled", 30.0, 75, 2.0, None, 1e12),
        ("P", 1.0, "graphed, compiled", 18.0, 75, 1.4, None, 1e12),
    ]
    table = bench.profile_table(rows).splitlines()
    body = [line for line in table if line.startswith("| P ")]
    # Only the eager row with kernel times, beside its own graphed call (20 ms, not 18).
    assert body == ["| P | plain | 0.00 | 6.00 | 0.00 | 10.00 | 0.00 | 16.00 | 20.00 |"]
