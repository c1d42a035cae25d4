"""gs-priors: one classifier-free-guided denoiser call and a full DDIM sample per diffusion prior,
at paper size with random weights (timing only), batch 1, eager and replayed as CUDA graphs.

Issue targets (H200, bf16): Zero123 guided call <= 8 ms; Zero123++ 75-step six-view sample
<= 1.2 s; ImageDream 50-step four-view sample <= 0.8 s.

    python3 benchmarks/priors.py                          # every prior, CUDA, bf16
    python3 benchmarks/priors.py --priors zero123plus --dtype float16
    python3 benchmarks/priors.py --priors zero123plus --channels-last --compile

``--channels-last`` stores the U-Net's convolution weights channels-last; ``--compile`` compiles
the U-Net in place (static shapes) after the plain rows, so the compiled kernels are warm before
the CUDA graph records them: each adds rows, so one run compares them. ``--compile-mode
max-autotune-no-cudagraphs`` compiles with inductor's autotuned matmul and convolution kernels. ``--sdpa
flash,efficient,cudnn,math`` adds rows with ``F.scaled_dot_product_attention`` held to each
named kernel (``torch.nn.attention.sdpa_kernel``) while the denoiser runs and its graph records
(the default lets torch choose); attention is more than half of Zero123++'s work.

    python3 benchmarks/priors.py --priors zero123plus --channels-last --sdpa cudnn,flash

``--inductor-recipes diffusers,freezing`` (with ``--compile``) compiles the U-Net again under each
named set of Inductor settings (:data:`INDUCTOR_RECIPES`; ``a+b`` joins two) and adds its rows,
so the recipes compare with the plain compile in one process. ``--profile`` adds, for each eager
row set, the GPU kernel time of one guided call by kind (attention, convolution, matmul, fused
Triton, other) beside the graphed call's wall time: where the time goes.

    python3 benchmarks/priors.py --priors zero123plus --channels-last --compile \
        --inductor-recipes diffusers,freezing --profile

Each row also gives the guided call's floating-point work (counted by
``torch.utils.flop_counter`` on the meta device: no memory, no GPU) and the rate the measured
time implies, so a target can be read against the GPU's peak. ``--flops-only`` prints the
counts alone and runs without CUDA:

    python3 benchmarks/priors.py --flops-only

Add a prior by adding a :class:`Bench` to :data:`PRIORS`. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gs_priors.prior import Condition, DiffusionPrior
from gs_priors.samplers import GuidedDenoiser, sample


@dataclass(frozen=True)
class Bench:
    """``build(device, dtype) -> (prior, condition, latent shape [1, C, h, w])`` at paper size."""

    build: Callable[[torch.device, torch.dtype], tuple[DiffusionPrior, Condition, tuple]]
    steps: int
    guidance_scale: float
    what: str
    scheduler_options: dict


def build_zero123(device: torch.device, dtype: torch.dtype):
    """``ashawkey/zero123-xl-diffusers`` at paper size (``gs_priors.tiny.paper_size_zero123``);
    256 px, 32x32 latents; DreamGaussian's CFG 5."""
    from gs_priors.tiny import paper_size_zero123

    prior = paper_size_zero123(device, dtype)
    ref = prior.encode_reference(torch.rand(1, 4, 256, 256, device=device))
    cond = prior.camera_condition(ref, torch.tensor([0.0]), torch.tensor([90.0]))
    return prior, cond, (1, 4, 32, 32)


def build_zero123plus(device: torch.device, dtype: torch.dtype):
    """``sudo-ai/zero123plus-v1.1``: the SD2 U-Net with reference attention over the noised
    512 px condition latent (64x64), the six views as one 120x80 latent; CFG 4."""

    from gs_priors.tiny import tiny_clip_tokenizer
    from gs_priors.zero123plus import (
        PAPER_CONFIGS,
        Zero123PlusGuidance,
        build_modules,
        official_scheduler,
    )

    with torch.device(device):
        modules = build_modules(PAPER_CONFIGS)
    # Timing only: a byte-level tokenizer stands in for the CLIP vocabulary.
    tokenizer = tiny_clip_tokenizer(max_length=77)
    scheduler = official_scheduler()
    prior = Zero123PlusGuidance(
        modules["vae"],
        modules["unet"],
        modules["text_encoder"],
        tokenizer,
        modules["vision_encoder"],
        scheduler,
        ramping_coefficients=torch.linspace(0.0, 1.2, 77).tolist(),
    ).to(device=device, dtype=dtype)
    cond = prior.encode_reference(torch.rand(1, 4, 320, 320, device=device))
    return prior, cond, prior.latent_shape(1)


def build_imagedream(device: torch.device, dtype: torch.dtype):
    """``ashawkey/imagedream-ipmv-diffusers`` at paper size (``gs_priors.tiny.
    paper_size_imagedream``): four orthogonal 256 px views (32x32 latents) plus the input as a
    fifth frame; CFG 5."""
    from gs_priors.tiny import paper_size_imagedream

    prior = paper_size_imagedream(device, dtype)
    cond = prior.condition(prior.encode_reference(torch.rand(1, 4, 256, 256, device=device)))
    return prior, cond, (4, 4, 32, 32)


PRIORS: dict[str, Bench] = {
    "zero123": Bench(build_zero123, 50, 5.0, "Zero123-XL, 256 px, 1 view", {}),
    "zero123plus": Bench(
        build_zero123plus,
        75,
        4.0,
        "Zero123++ v1.1, 6 views 960x640",
        {"timestep_spacing": "trailing"},
    ),
    "imagedream": Bench(build_imagedream, 50, 5.0, "ImageDream, 4 views + input, 256 px", {}),
}


def guided_call_flops(bench: Bench) -> dict[str, float]:
    """Floating-point operations of one guided denoiser call, by ATen op (``"total"`` too),
    counted on the meta device (attention appears as its two matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = torch.device("meta")
    prior, cond, shape = bench.build(meta, torch.float32)
    denoiser = GuidedDenoiser(prior, cond, bench.guidance_scale, shape[0])
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        denoiser(torch.empty(shape, device=meta), 500)
    by_op = {str(op): float(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return {**by_op, "total": float(counter.get_total_flops())}


SDPA_BACKENDS = {
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
    "math": "MATH",
}

# torch.compile modes for --compile. Inductor's own CUDA graphs (reduce-overhead, max-autotune)
# are left out: the graphed rows record the compiled U-Net in GuidedDenoiser's graph. The
# autotuned mode tries Triton templates against cuBLAS / cuDNN for each matmul and convolution
# (minutes more of compiling at paper size).
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")

# Named sets of Inductor settings for --inductor-recipes, passed as torch.compile's ``options``
# (so they hold for that compile only). Neither autotunes matmuls or convolutions, which took
# more than a session's device time for Zero123++ (sessions 62 and 65).
INDUCTOR_RECIPES: dict[str, dict[str, bool]] = {
    # The settings diffusers' "Accelerate inference of text-to-image diffusion models" tutorial
    # compiles the SDXL U-Net with: 1x1 convolutions as matmuls, coordinate-descent tuning of
    # each generated Triton kernel's launch configuration (in every direction), and no fusing
    # of pointwise epilogues into matmul templates.
    "diffusers": {
        "conv_1x1_as_mm": True,
        "coordinate_descent_tuning": True,
        "coordinate_descent_check_all_directions": True,
        "epilogue_fusion": False,
    },
    # Inference freezing: parameters become constants, so Inductor folds what depends on them
    # alone and picks the convolution weights' layout.
    "freezing": {"freezing": True},
}

# Kernel kinds for --profile, tried in order on the lower-cased kernel name: Inductor's fused
# Triton kernels first (their names list the ATen ops fused, which may name attention or a
# convolution whose output they touch), then attention (its kernels are often CUTLASS ones),
# then convolution (cuDNN's "fprop" and implicit-GEMM kernels, Inductor's convolution
# templates), then matmul (cuBLAS's nvjet / xmma / gemm kernels, CUTLASS, Inductor's mm
# templates "triton_tem"); everything else (ATen's elementwise, norm and copy kernels) is
# "other".
KERNEL_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fused Triton", ("triton_poi", "triton_red", "triton_per")),
    ("attention", ("fmha", "flash", "attn", "sdpa", "attention")),
    ("convolution", ("conv", "fprop", "implicit_gemm", "implicit_convolve")),
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "cublas", "triton_tem", "matmul")),
)


def kernel_kind(name: str) -> str:
    """The kind of one GPU kernel by its name (:data:`KERNEL_KINDS`), ``"other"`` if none."""
    lower = name.lower()
    for kind, marks in KERNEL_KINDS:
        if any(m in lower for m in marks):
            return kind
    return "other"


def kernel_time_by_kind(kernels: list[tuple[str, float]], calls: int) -> dict[str, float]:
    """``[(kernel name, GPU time in us)]`` over ``calls`` calls -> ms per call by kind, with
    ``"total"``; every kind of :data:`KERNEL_KINDS` and ``"other"`` is present."""
    if calls < 1:
        raise ValueError(f"calls: expected at least 1, got {calls}")
    out = {kind: 0.0 for kind, _ in KERNEL_KINDS} | {"other": 0.0}
    for name, us in kernels:
        out[kernel_kind(name)] += us / 1e3 / calls
    out["total"] = sum(out.values())
    return out


def inductor_recipe(spec: str) -> dict[str, bool]:
    """``'diffusers+freezing'`` -> the named recipes' settings, joined; one clear error naming
    an unknown recipe."""
    settings: dict[str, bool] = {}
    for name in spec.split("+"):
        if name.strip() not in INDUCTOR_RECIPES:
            raise SystemExit(
                f"--inductor-recipes: unknown {name.strip()!r}; expected some of "
                f"{sorted(INDUCTOR_RECIPES)}, joined by '+' to combine"
            )
        settings |= INDUCTOR_RECIPES[name.strip()]
    return settings


def compile_options(mode: str | None, recipe: dict[str, bool]) -> dict:
    """torch.compile's keywords for ``mode`` plus ``recipe``'s settings: one compile takes a
    mode or options, not both, so a recipe on top of a mode spells the mode out as options."""
    if not recipe:
        return {"mode": mode}
    import torch._inductor

    base = dict(torch._inductor.list_mode_options(mode)) if mode else {}
    return {"options": base | recipe}


def sdpa_backends(spec: str | None) -> list[str]:
    """``'cudnn,flash'`` -> ``['cudnn', 'flash']``; one clear error naming the unknown ones."""
    names = [n.strip() for n in (spec or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in SDPA_BACKENDS]
    if unknown:
        raise SystemExit(f"--sdpa: unknown {unknown}; expected some of {sorted(SDPA_BACKENDS)}")
    return names


def _time(fn, repeats: int) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def measure(
    bench: Bench,
    device: torch.device,
    dtype: torch.dtype,
    calls: int,
    samples: int,
    channels_last: bool = False,
    compile: bool = False,
    sdpa: tuple[str, ...] = (),
    compile_mode: str | None = None,
    recipes: dict[str, dict[str, bool]] | None = None,
    profile: bool = False,
):
    """Rows ``(what, U-Net M params, mode, guided call ms, steps, sample s, kernels)``: eager and
    graphed, then (``channels_last``) with channels-last weights, then each ``sdpa`` attention
    kernel (names of :data:`SDPA_BACKENDS`) in that layout, then (``compile``) compiled as well,
    in ``compile_mode`` (torch.compile's mode; None is its default), then compiled again under
    each of ``recipes`` (spec -> :func:`inductor_recipe` settings). ``kernels`` is None, or (``profile``,
    eager rows) :func:`kernel_time_by_kind` of one guided call."""
    prior, cond, shape = bench.build(device, dtype)
    params = sum(p.numel() for p in prior.unet.parameters()) / 1e6
    x = torch.randn(shape, device=device)
    timing = (x, params, calls, samples, profile)
    rows = _rows(bench, prior, cond, shape, *timing, "")
    suffix = ""
    if channels_last:
        prior.unet.to(memory_format=torch.channels_last)
        suffix += ", channels-last"
        rows += _rows(bench, prior, cond, shape, *timing, suffix)
    for name in sdpa:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = getattr(SDPBackend, SDPA_BACKENDS[name])
        try:
            with sdpa_kernel([backend]):
                rows += _rows(bench, prior, cond, shape, *timing, f"{suffix}, sdpa {name}")
        except RuntimeError as e:  # the kernel does not take these shapes or dtype here
            print(f"sdpa {name}: not run ({str(e).splitlines()[0][:160]})", flush=True)
    if compile:
        # Static shapes: each U-Net shape (Zero123++: its reference pass and its grid) gets its
        # own kernels, compiled during the eager warm-up, before any CUDA graph is recorded.
        prior.unet.compile(dynamic=False, mode=compile_mode)
        suffix += ", compiled" + (f" ({compile_mode})" if compile_mode else "")
        rows += _rows(bench, prior, cond, shape, *timing, suffix)
        for spec, settings in (recipes or {}).items():
            # A fresh compile: dynamo's cached code for the U-Net would otherwise be reused.
            torch._dynamo.reset()
            prior.unet.compile(dynamic=False, **compile_options(compile_mode, settings))
            rows += _rows(bench, prior, cond, shape, *timing, f"{suffix}, recipe {spec}")
    return rows


def _profile(denoiser, x, calls: int) -> dict[str, float]:
    """GPU kernel time of ``calls`` eager calls of ``denoiser``, by kind, in ms per call."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    with profiler(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            denoiser(x, 500)
        torch.cuda.synchronize()
    kernels = [
        (e.name, e.device_time_total)
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA
    ]
    return kernel_time_by_kind(kernels, calls)


def _rows(bench, prior, cond, shape, x, params, calls, samples, profile, suffix):
    rows = []
    for graphed in (False, True):
        denoiser = GuidedDenoiser(prior, cond, bench.guidance_scale, shape[0], graphed)
        for _ in range(3):  # warm-up (and the graph's recording)
            denoiser(x, 500)
        call = _time(lambda d=denoiser: d(x, 500), calls)
        kernels = _profile(denoiser, x, 3) if profile and not graphed else None

        def run(denoiser=denoiser):
            # Reusing the denoiser keeps its recorded graph across samples.
            return sample(
                prior,
                cond,
                shape,
                steps=bench.steps,
                generator=torch.Generator(x.device).manual_seed(0),
                denoiser=denoiser,
                **bench.scheduler_options,
            )

        run()
        total = _time(run, samples)
        mode = ("graphed" if graphed else "eager") + suffix
        rows.append((bench.what, params, mode, call * 1e3, bench.steps, total, kernels))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", nargs="*", default=list(PRIORS), choices=list(PRIORS))
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--calls", type=int, default=20, help="timed denoiser calls")
    ap.add_argument("--samples", type=int, default=2, help="timed full samples")
    ap.add_argument("--channels-last", action="store_true", help="add channels-last rows")
    ap.add_argument("--compile", action="store_true", help="add rows with the U-Net compiled")
    ap.add_argument(
        "--compile-mode",
        default=None,
        choices=COMPILE_MODES,
        help="torch.compile's mode for --compile (default: its default). The CUDA-graph rows "
        "record their own graph, so a mode with inductor's graphs is not offered",
    )
    ap.add_argument(
        "--sdpa",
        default=None,
        help="add rows with attention held to these kernels: flash,efficient,cudnn,math",
    )
    ap.add_argument(
        "--inductor-recipes",
        default=None,
        help="with --compile: add rows compiled again under each of these Inductor settings "
        f"({', '.join(sorted(INDUCTOR_RECIPES))}; a+b joins two), comma-separated",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="add the GPU kernel time of one eager guided call by kind (attention, convolution, "
        "matmul, fused Triton, other)",
    )
    ap.add_argument("--flops-only", action="store_true", help="count FLOPs only (no CUDA needed)")
    args = ap.parse_args()
    sdpa = tuple(sdpa_backends(args.sdpa))
    # An unknown recipe stops here, before minutes of building.
    specs = [r.strip() for r in (args.inductor_recipes or "").split(",") if r.strip()]
    recipes = {spec: inductor_recipe(spec) for spec in specs}
    if recipes and not args.compile:
        raise SystemExit("--inductor-recipes: needs --compile (the recipes' rows follow its rows)")
    flops = {}
    for name in args.priors:
        flops[name] = guided_call_flops(PRIORS[name])
    if args.flops_only:
        print("| prior | TFLOP per guided call | of which convolution / matmul + attention |")
        print("|---|---:|---|")
        for name, f in flops.items():
            conv = sum(v for k, v in f.items() if "convolution" in k)
            print(
                f"| {PRIORS[name].what} | {f['total'] / 1e12:.3f} | "
                f"{conv / 1e12:.3f} / {(f['total'] - conv) / 1e12:.3f} |"
            )
        return
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/priors.py needs a CUDA device")
    device = torch.device("cuda")
    dtype = getattr(torch, args.dtype)
    rows = []
    for name in args.priors:
        t0 = time.perf_counter()
        rows += [
            (*row, flops[name]["total"])
            for row in measure(
                PRIORS[name],
                device,
                dtype,
                args.calls,
                args.samples,
                channels_last=args.channels_last,
                compile=args.compile,
                sdpa=sdpa,
                compile_mode=args.compile_mode,
                recipes=recipes,
                profile=args.profile,
            )
        ]
        print(f"{name}: measured in {time.perf_counter() - t0:.0f} s", flush=True)
        torch.cuda.empty_cache()
    print(f"\ndevice: {torch.cuda.get_device_name(device)}; {args.dtype}; batch 1; DDIM\n")
    print(
        "| prior | U-Net (M params) | mode | guided call (ms) | TFLOP per call | TFLOP/s "
        "| steps | sample (s) |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for what, params, mode, ms, steps, s, _, f in rows:
        rate = f / (ms * 1e-3) / 1e12
        print(
            f"| {what} | {params:.0f} | {mode} | {ms:.2f} | {f / 1e12:.3f} | {rate:.0f} "
            f"| {steps} | {s:.3f} |"
        )
    if args.profile:
        print(profile_table(rows))


def profile_table(rows) -> str:
    """Markdown: for each eager row with kernel times, its GPU kernel time per guided call by
    kind, their sum, and the wall time of the graphed row of the same setting."""
    kinds = [kind for kind, _ in KERNEL_KINDS] + ["other"]
    graphed = {
        (r[0], r[2].removeprefix("graphed")): r[3] for r in rows if r[2].startswith("graphed")
    }
    lines = [
        "\nGPU kernel time of one guided call by kind (ms; eager calls under torch.profiler):\n",
        "| prior | setting | " + " | ".join(kinds) + " | kernels | graphed call |",
        "|---|---|" + "---:|" * (len(kinds) + 2),
    ]
    for what, _, mode, _, _, _, kernels, _ in rows:
        if kernels is None:
            continue
        setting = mode.removeprefix("eager")
        wall = graphed.get((what, setting))
        cells = " | ".join(f"{kernels[k]:.2f}" for k in kinds)
        lines.append(
            f"| {what} | {setting.removeprefix(', ') or 'plain'} | {cells} | {kernels['total']:.2f} "
            f"| {'' if wall is None else f'{wall:.2f}'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
