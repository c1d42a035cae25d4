"""Benchmark gs_core.render: forward and forward+backward for every backend on this machine.

Scene: N Gaussians uniform in the unit ball, isotropic scale 0.02, random rotations, opacity
sigmoid(N(0, 1)), SH degree 0 with random colours; C orbit cameras at distance 2.5 (the ball
just fills the 49.1 deg vertical field of view) at R x R pixels.

    python3 benchmarks/render.py                         # full grid, all backends here
    python3 benchmarks/render.py --quick                 # the CPU target: 4,096 G, 128 px, 1 cam
    python3 benchmarks/render.py --backends gsplat --overhead   # + wrapper overhead vs raw gsplat

Times are the minimum (and median) over ``--repeats`` runs after ``--warmup`` runs, synchronised
on CUDA; "fwd" is a forward with autograd recording (as in training), "fwd+bwd" adds the
backward of a sum of all outputs. Prints markdown tables.

On a CPU shared with other busy processes, torch's thread pool stalls waiting for its second
thread and a 2-thread run can be several times slower than ``--threads 1``; compare both there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from gs_core import Cameras, Gaussians, render


def make_scene(n: int, device, seed: int = 0, scale: float = 0.02):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, 3, generator=g)
    means = d / d.norm(dim=-1, keepdim=True) * torch.rand(n, 1, generator=g) ** (1 / 3)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    scales = torch.full((n, 3), scale)
    opac = torch.sigmoid(torch.randn(n, generator=g))
    sh = (torch.rand(n, 1, 3, generator=g) - 0.5) / 0.28209479177387814
    return [t.to(device).requires_grad_() for t in (means, quats, scales, opac, sh)]


def make_cameras(c: int, res: int, device) -> Cameras:
    az = [360.0 * i / c + 15.0 for i in range(c)]
    return Cameras.orbit(az, 15.0, radius=2.5, width=res, height=res, device=device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, device, repeats: int, warmup: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def bench_render(params, cams, backend, device, repeats, warmup):
    # The parameters are the autograd leaves, so one Gaussians object serves every step; its
    # construction is the caller's cost, not the renderer's.
    g = Gaussians.unchecked(*params)

    def fwd():
        return render(g, cams, backend=backend)

    def fwd_bwd():
        out = fwd()
        (out.rgb.sum() + out.alpha.sum()).backward()
        for p in params:
            p.grad = None

    f = time_it(fwd, device, repeats, warmup)
    fb = time_it(fwd_bwd, device, repeats, warmup)
    return f, fb


def bench_raw_gsplat(params, cams, device, repeats, warmup):
    from gsplat import rasterization

    means, quats, scales, opac, sh = params

    def fwd():
        return rasterization(
            means,
            quats,
            scales,
            opac,
            sh,
            cams.viewmats,
            cams.Ks,
            cams.width,
            cams.height,
            sh_degree=0,
            packed=False,
        )

    def fwd_bwd():
        colors, alphas, _ = fwd()
        (colors.sum() + alphas.sum()).backward()
        for p in params:
            p.grad = None

    return time_it(fwd, device, repeats, warmup), time_it(fwd_bwd, device, repeats, warmup)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, nargs="+", default=[4096, 16384, 65536, 157184])
    ap.add_argument("--res", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--cams", type=int, nargs="+", default=[1, 4])
    ap.add_argument(
        "--backends",
        nargs="+",
        default=None,
        help="any of torch-cpu, torch-cuda, gsplat (default: every one available here)",
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores)"
    )
    ap.add_argument("--quick", action="store_true", help="only 4,096 Gaussians, 128 px, 1 camera")
    ap.add_argument(
        "--max-cpu-work",
        type=float,
        default=None,
        help="skip torch-cpu configs with N x res^2 x cams above this (the largest take minutes)",
    )
    ap.add_argument("--overhead", action="store_true", help="also time raw gsplat.rasterization")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n, args.res, args.cams = [4096], [128], [1]
    has_cuda = torch.cuda.is_available()
    available = ["torch-cpu"]
    if has_cuda:
        available.append("torch-cuda")
        from gs_core.rendering import gsplat_available

        if gsplat_available():
            available.append("gsplat")
    backends = args.backends or available
    for b in backends:
        if b not in available:
            print(
                f"backend {b} is not available here (available: {', '.join(available)})",
                file=sys.stderr,
            )
            return 2

    dev_name = torch.cuda.get_device_name() if has_cuda else "-"
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()} of {os.cpu_count()} cores, "
        f"GPU: {dev_name}, load average {os.getloadavg()[0]:.2f}\n"
    )
    print("| backend | N | res | cams | fwd ms (min / median) | fwd+bwd ms (min / median) |")
    print("|---|---:|---:|---:|---:|---:|")
    overhead_rows = []
    for b in backends:
        device = torch.device("cpu" if b == "torch-cpu" else "cuda")
        name = "torch" if b.startswith("torch") else "gsplat"
        for n in args.n:
            params = make_scene(n, device)
            for res in args.res:
                for c in args.cams:
                    work = n * res * res * c
                    if b == "torch-cpu" and args.max_cpu_work and work > args.max_cpu_work:
                        print(f"| {b} | {n} | {res} | {c} | skipped (--max-cpu-work) | |")
                        continue
                    cams = make_cameras(c, res, device)
                    # the largest CPU configs take seconds per run: fewer repeats there
                    reps = args.repeats if b != "torch-cpu" or work < 1e10 else 2
                    (f, fm), (fb, fbm) = bench_render(params, cams, name, device, reps, args.warmup)
                    print(
                        f"| {b} | {n} | {res} | {c} | {f * 1e3:.2f} / {fm * 1e3:.2f} "
                        f"| {fb * 1e3:.2f} / {fbm * 1e3:.2f} |",
                        flush=True,
                    )
                    if args.overhead and b == "gsplat":
                        reps_o = max(args.repeats, 50)
                        (f, _), (fb, _) = bench_render(params, cams, "gsplat", device, reps_o, 5)
                        (rf, _), (rfb, _) = bench_raw_gsplat(params, cams, device, reps_o, 5)
                        overhead_rows.append((n, res, c, rf, f, rfb, fb))
            del params
    if overhead_rows:
        print("\nWrapper overhead: gs_core.render(backend='gsplat') vs raw gsplat.rasterization")
        print("(minimum over >= 50 runs)\n")
        print(
            "| N | res | cams | raw fwd ms | render fwd ms | overhead | raw fwd+bwd ms | render fwd+bwd ms | overhead |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, res, c, rf, f, rfb, fb in overhead_rows:
            print(
                f"| {n} | {res} | {c} | {rf * 1e3:.3f} | {f * 1e3:.3f} | {100 * (f / rf - 1):+.1f}% "
                f"| {rfb * 1e3:.3f} | {fb * 1e3:.3f} | {100 * (fb / rfb - 1):+.1f}% |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
