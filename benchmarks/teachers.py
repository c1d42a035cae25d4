"""gs-priors teachers: training throughput of the three procedural teachers (random weights,
random views, the real trainer) under the speed options, so a GPU lease can pick the fastest
before training long, and how far each runs from the GPU's peak.

Each (prior, variant) builds a fresh teacher at the ``procedural`` preset's size (``--preset
tiny`` on a CPU), a synthetic view bank of ``--objects`` objects (random pixels and angles: the
step's cost does not depend on what the views show), runs ``--warmup`` steps and then times
``--steps`` steps. Variants: ``default`` (bf16 autocast, channels-last on CUDA, eager),
``contiguous`` (no channels-last), ``compile`` (the U-Net compiled in place; its compile time is
printed apart), ``compile-graphs`` (compiled in ``reduce-overhead`` mode: its forward and
backward replayed as CUDA graphs; CUDA only), ``compile-graphs-foreach`` (the same with the
multi-tensor AdamW the trainer used before fused AdamW became its CUDA default), ``batch2x``
(twice the preset's batch), ``cudnn-benchmark`` (``default`` with
``torch.backends.cudnn.benchmark`` on: cuDNN times its convolution algorithms for each shape in
the warm-up steps and keeps the fastest, where by default it picks one by heuristics). Prints a
markdown table of samples/s and the step's arithmetic rate: the work of one training step
(forward and backward, counted once per prior by ``torch.utils.flop_counter`` on an eager step)
over its measured time.
``--profile N`` also prints, per run, the N operators that took the most device time (CPU time
on a CPU) over three profiled steps: where the step's time goes.

    python3 benchmarks/teachers.py                                  # CUDA, every prior
    python3 benchmarks/teachers.py --priors zero123 --variants default,compile --profile 15
    python3 benchmarks/teachers.py --preset tiny --device cpu --steps 3 --warmup 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

VARIANTS = (
    "default",
    "contiguous",
    "compile",
    "compile-graphs",
    "compile-graphs-foreach",
    "batch2x",
    "cudnn-benchmark",
)


def synthetic_bank(name: str, objects: int, resolution: int, device: torch.device):
    """Random views with the view count each prior's batches need (12, 7 per set, a ring of 24)."""
    from gs_priors.teachers import ViewBank

    views = {"zero123": 12, "zero123plus": 7, "imagedream": 24}[name]
    g = torch.Generator().manual_seed(0)
    shape = (objects, views, 4, resolution, resolution)
    rgba = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    rgba[:, :, 3] = 255
    azimuth = torch.rand(objects, views, generator=g) * 360 - 180
    elevation = torch.rand(objects, views, generator=g) * 40 - 10
    angles = torch.stack([azimuth, elevation], -1)
    return ViewBank(rgba.to(device), angles.to(device), [f"o{i}" for i in range(objects)])


def run_steps(trainer, steps: int, device: torch.device) -> float:
    """Seconds for ``steps`` training steps, the GPU's queue drained at the end."""
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def flops_per_sample(trainer, batch: int) -> float:
    """Floating-point operations of one eager training step, per sample."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        trainer.step()
    return counter.get_total_flops() / batch


def profile_table(trainer, device: torch.device, rows: int, steps: int = 3) -> str:
    """The ``rows`` operators with the most device time (CPU time on a CPU) over ``steps``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        run_steps(trainer, steps, device)
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def measure(
    name: str, variant: str, args, device: torch.device, root: Path, flops: dict[str, float]
) -> dict:
    from gs_priors.teachers import (
        TeacherConfig,
        TeacherTrainer,
        build_vae,
        load_teacher,
        write_teacher,
    )

    cfg = TeacherConfig.preset(name if args.preset == "procedural" else f"tiny-{name}")
    if variant == "batch2x":
        cfg = cfg.model_copy(update={"batch_size": 2 * cfg.batch_size})
    vae_dir = root / f"vae-{args.preset}"
    if not vae_dir.exists():
        build_vae(cfg).save_pretrained(vae_dir)
    directory = write_teacher(cfg, root / f"{name}-{variant}", vae_dir)
    prior = load_teacher(directory, device=device)
    bank = synthetic_bank(name, args.objects, cfg.resolution, device)
    trainer = TeacherTrainer(
        prior,
        cfg,
        bank,
        channels_last=(variant != "contiguous") and device.type == "cuda",
        compile=variant.startswith("compile"),
        compile_graphs=variant.startswith("compile-graphs"),
        # The optimizer before fused AdamW became the CUDA default: its multi-tensor chain.
        fused_optimizer=False if variant == "compile-graphs-foreach" else None,
    )
    cudnn_before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = variant == "cudnn-benchmark" or cudnn_before
    try:
        warmup_s = run_steps(trainer, args.warmup, device)
        seconds = run_steps(trainer, args.steps, device)
    finally:
        torch.backends.cudnn.benchmark = cudnn_before
    # The same arithmetic in every variant, so it is counted once, on an eager one.
    if name not in flops and not variant.startswith("compile"):
        flops[name] = flops_per_sample(trainer, cfg.batch_size)
    row = {
        "prior": name,
        "variant": variant,
        "batch": cfg.batch_size,
        "ms_per_step": 1e3 * seconds / args.steps,
        "samples_per_s": args.steps * cfg.batch_size / seconds,
        "warmup_s": warmup_s,
    }
    if args.profile:
        row["profile"] = profile_table(trainer, device, args.profile)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--priors", default="zero123,zero123plus,imagedream")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--preset", choices=("procedural", "tiny"), default="procedural")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--objects", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also print the N operators with the most device time per run",
    )
    args = p.parse_args(argv)
    device = torch.device(args.device)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown} (choose from {', '.join(VARIANTS)})")
    rows: list[dict] = []
    flops: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.priors.split(","):
            for variant in variants:
                row = measure(name, variant, args, device, Path(tmp), flops)
                rows.append(row)
                print(
                    f"{name} {variant}: {row['samples_per_s']:.0f} samples/s "
                    f"({row['ms_per_step']:.1f} ms/step at batch {row['batch']}; "
                    f"warm-up {row['warmup_s']:.1f} s)",
                    flush=True,
                )
                if "profile" in row:
                    print(f"\nwhere {name} {variant}'s step goes:\n{row['profile']}", flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{name}, preset {args.preset}, {args.steps} timed steps after {args.warmup}\n")
    print("| prior | variant | batch | ms / step | samples / s | GFLOP / sample | TFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        per_sample = flops.get(r["prior"])  # None: the prior ran compiled only
        r["tflop_per_s"] = None if per_sample is None else per_sample * r["samples_per_s"] / 1e12
        gflop = "-" if per_sample is None else f"{per_sample / 1e9:.2f}"
        rate = "-" if r["tflop_per_s"] is None else f"{r['tflop_per_s']:.1f}"
        print(
            f"| {r['prior']} | {r['variant']} | {r['batch']} | {r['ms_per_step']:.1f} "
            f"| {r['samples_per_s']:.0f} | {gflop} | {rate} |"
        )
    return rows


if __name__ == "__main__":
    main()
