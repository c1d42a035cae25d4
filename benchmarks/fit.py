"""Per-object 3DGS fitting benchmark: held-out PSNR against wall time on one procedural object.

Target (issue 5): at 64x64 on a 2-core CPU, >= 30 dB held-out PSNR within 3 minutes::

    python3 benchmarks/fit.py                                   # CPU, 64x64, preset small
    python3 benchmarks/fit.py --device cuda --resolution 256    # the GPU figure at 256x256

Generates the object with the procedural world (48 views; every 8th held out), fits it with
``gs_core.fitting`` and prints a markdown table of held-out PSNR/SSIM over time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--views", type=int, default=48, help="views rendered (every 8th is held out)")
    ap.add_argument("--category", default="mug")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="small", help="FitConfig preset")
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="FitConfig key=value"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest for small images)"
    )
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--budget", type=float, default=180.0, help="seconds the target allows")
    ap.add_argument("--target", type=float, default=30.0, help="held-out PSNR target in dB")
    args = ap.parse_args(argv)

    import torch

    from gs_core.fitting import FitConfig, fit_object
    from gs_core.procedural import ProceduralConfig, generate

    torch.set_num_threads(args.threads)
    cfg = FitConfig.preset(args.preset).with_overrides(
        {
            "resolution": args.resolution,
            "eval_every": args.eval_every,
            **dict(_kv(o) for o in args.overrides),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = ProceduralConfig(
            objects=1,
            views=args.views,
            resolution=args.resolution,
            categories=[args.category],
            seed=args.seed,
            split="train",
        )
        generate(data, f"{tmp}/ds", workers=0, progress=False)
        obj = next(
            p for p in os.scandir(f"{tmp}/ds") if p.is_dir() and p.name.startswith(args.category)
        )
        t0 = time.perf_counter()
        res = fit_object(obj.path, cfg, out="", device=args.device)
        total = time.perf_counter() - t0

    dev = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"CPU ({os.cpu_count()} cores, {args.threads} torch threads)"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"## gs3d fit: {args.category} (seed {args.seed}), {args.resolution}x{args.resolution}, preset {args.preset}"
    )
    print()
    print(
        f"device: {dev}; load average at end: {load:.1f}; iterations {cfg.iterations}, {cfg.views_per_step} views/step"
    )
    print()
    print("| step | seconds | Gaussians | held-out PSNR (dB) | held-out SSIM |")
    print("|---:|---:|---:|---:|---:|")
    reached = None
    for h in res.history:
        print(
            f"| {h['step']} | {h['seconds']:.1f} | {h['gaussians']} | {h['psnr']:.2f} | {h['ssim']:.4f} |"
        )
        if reached is None and h["psnr"] >= args.target:
            reached = h["seconds"]
    print()
    final = res.metrics.get("psnr", float("nan"))
    ok = reached is not None and reached <= args.budget
    when = f"reached at {reached:.1f} s" if reached is not None else "not reached"
    print(
        f"final held-out PSNR {final:.2f} dB after {res.steps} steps / {total:.1f} s; target {args.target:.0f} dB "
        f"{when} (budget {args.budget:.0f} s): {'PASS' if ok else 'FAIL'}"
    )
    return 0


def _kv(item: str):
    import json

    k, v = item.split("=", 1)
    try:
        return k, json.loads(v)
    except json.JSONDecodeError:
        return k, v


if __name__ == "__main__":
    sys.exit(main())
