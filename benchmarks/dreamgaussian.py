"""DreamGaussian speed: stage 1 (500 steps of Zero123 SDS) and stage 2 (mesh extraction, UV
baking, 50 steps of texture refinement) for one object, and where the time goes.

The ``paper`` preset runs with a Zero123 of the released architecture (Zero123-XL: the Stable
Diffusion 1.x U-Net with 8 input channels, the SD VAE, CLIP ViT-L/14, the 772 -> 768 camera
projection) and random weights, built in memory and handed to the method
(``gs_method_dreamgaussian.guidance.install_prior``): it times the same as the released weights
and needs no download. Random guidance steers densification differently from a trained prior,
so the final Gaussian count (printed) is not the one a real run reaches. Targets on one H200:
stage 1 <= 12 s, stage 2 with extraction and baking <= 12 s (the official README: about a
minute each on a V100).

    python3 benchmarks/dreamgaussian.py                               # paper preset, CUDA
    python3 benchmarks/dreamgaussian.py --preset tiny --device cpu    # CPU, tiny random Zero123
    python3 benchmarks/dreamgaussian.py --set stage1.steps=100 --no-cuda-graph
    python3 benchmarks/dreamgaussian.py --preset procedural --config-prior \
        --set prior.model_id=TEACHER_DIR                              # the procedural teacher
    python3 benchmarks/dreamgaussian.py --compare prior.channels_last=vae \
        --compare stage1.fused_adam=false                            # A/B in one process

``--compare KEY=VALUE[,KEY=VALUE...]`` (repeatable) times each variant after the base
configuration, in the same process with the same prior, and prints the ratios to the base.

Each configuration runs ``--runs`` times (the first also records CUDA graphs and warms the
allocator; the table shows the median of the others, each run's total is printed as it ends, so
a noisy shared machine shows as a spread), then once more with ``profile=True``: seconds per section
(U-Net, VAE encode and its backward, Gaussian rendering and its backward, optimiser,
densification, mesh extraction, UV atlas, baking, mesh rendering, refinement), each bracketed by
CUDA synchronisations, so their sum exceeds the unprofiled time. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gs_priors.tiny import paper_size_zero123


def input_image(size: int) -> torch.Tensor:
    """A procedural mug seen from the front at 1.5 (the procedural world's views), as RGBA
    ``[1, 4, size, size]`` in [0, 1]."""
    import numpy as np

    from gs_core.cameras import Cameras
    from gs_core.procedural import make_object, render_views

    obj = make_object("mug", np.random.default_rng(0))
    cam = Cameras.orbit([0.0], [0.0], radius=1.5, width=size, height=size)
    views = render_views(obj, cam.camtoworlds.double().numpy(), cam.Ks.double().numpy(), size, size)
    return torch.from_numpy(views.rgba).float().div(255).permute(0, 3, 1, 2)


def timed_runs(model, image: torch.Tensor, runs: int, name: str):
    """Generate ``runs`` times; return the last output and the per-part median of the runs
    after the first (the first records CUDA graphs; with one run, that run)."""
    import statistics

    outs = []
    for i in range(max(1, runs)):
        out = model.generate(image, seed=0)
        outs.append(out.timings)
        print(f"{name}: run {i + 1} total {out.timings['total']:.2f} s", flush=True)
    kept = outs[1:] or outs
    return out, {k: statistics.median(t[k] for t in kept) for k in kept[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="paper", help="paper, paper_stable or tiny")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--runs",
        type=int,
        default=2,
        help="unprofiled runs; the median of all but the first is reported",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU runs)")
    p.add_argument("--no-cuda-graph", action="store_true", help="eager guided U-Net calls")
    p.add_argument(
        "--config-prior",
        action="store_true",
        help="load the prior the config names (e.g. the procedural teacher) instead of a "
        "random paper-size Zero123",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], help="key=value")
    p.add_argument(
        "--trace",
        action="store_true",
        help="one more run under torch.profiler: the 25 operators with the most self time on "
        "the device (CPU runs: on the CPU)",
    )
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="a variant of the configuration to time after the base one (repeatable)",
    )
    p.add_argument(
        "--trace-sort",
        choices=("device", "cpu"),
        default="device",
        help="--trace's order: self time on the device, or on the CPU (launch-bound runs)",
    )
    p.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the profiled run (no per-section table)",
    )
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args()

    from gs_method_dreamgaussian import DreamGaussian, DreamGaussianConfig
    from gs_method_dreamgaussian.guidance import install_prior

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    cfg = DreamGaussianConfig.preset(args.preset)
    overrides = list(args.overrides)
    if args.no_cuda_graph:
        overrides.append("prior.cuda_graph=false")
    if overrides:
        cfg = cfg.with_overrides(overrides)

    t0 = time.perf_counter()
    if cfg.prior.source != "tiny_random" and not args.config_prior:
        dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(cfg.prior.dtype)
        dtype = dtype if device.type == "cuda" and dtype is not None else torch.float32
        prior = paper_size_zero123(device, dtype)
        install_prior(cfg.prior, device, prior)
    build_s = time.perf_counter() - t0

    model = DreamGaussian(cfg).to(device)
    image = input_image(256).to(device)
    out, timings = timed_runs(model, image, args.runs, "base")
    profiled = None if args.no_profile else model.generate(image, seed=0, profile=True)

    mem = (
        f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
        if device.type == "cuda"
        else "n/a"
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\nDreamGaussian, preset {args.preset}, {name}, torch {torch.__version__}")
    print(f"prior built in {build_s:.1f} s; peak CUDA memory {mem}")
    g = out.gaussians
    mesh = out.meshes[0] if out.meshes else None
    faces = f"{mesh.num_faces:,}" if mesh is not None else "-"
    print(f"Gaussians {g.num_gaussians:,} (final), mesh faces {faces}\n")
    print("| part | seconds |")
    print("| --- | ---: |")
    for k, v in timings.items():
        print(f"| {k} | {v:.2f} |")
    sections = profiled.extras["profile"][0] if profiled is not None else {}
    if sections:
        print("\n| profiled section | seconds |")
        print("| --- | ---: |")
    for k, v in sorted(sections.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v:.2f} |")
    if args.trace:
        from torch.profiler import ProfilerActivity, profile

        cuda = device.type == "cuda"
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as trace:
            model.generate(image, seed=0)
        on_device = cuda and args.trace_sort == "device"
        key = "self_device_time_total" if on_device else "self_cpu_time_total"
        print(f"\ntorch.profiler, one run, sorted by {key}:")
        print(trace.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=60))
    compared = {}
    for spec in args.compare:
        variant = DreamGaussian(cfg.with_overrides(spec.split(","))).to(device)
        compared[spec] = timed_runs(variant, image, args.runs, spec)[1]
        print(
            f"{spec}: " + ", ".join(f"{k} {v:.2f} s" for k, v in compared[spec].items()),
            flush=True,
        )
    if compared:
        print("\n| variant | " + " | ".join(timings) + " |")
        print("| --- |" + " ---: |" * len(timings))
        print("| base | " + " | ".join(f"{v:.2f}" for v in timings.values()) + " |")
        for spec, t in compared.items():
            cells = [f"{t[k]:.2f} ({t[k] / max(v, 1e-9):.2f}x)" for k, v in timings.items()]
            print(f"| {spec} | " + " | ".join(cells) + " |")
    if args.json:
        from gs_core.io.atomic import atomic_write_text

        atomic_write_text(
            args.json,
            json.dumps(
                {
                    "preset": args.preset,
                    "device": name,
                    "timings_s": timings,
                    "runs": args.runs,
                    "profile_s": sections,
                    "num_gaussians": g.num_gaussians,
                    "num_faces": mesh.num_faces if mesh is not None else None,
                    "compare_timings_s": compared,
                },
                indent=2,
            )
            + "\n",
        )


if __name__ == "__main__":
    main()
