"""Benchmark gs_core.rendering.mesh_render.render_mesh: forward + backward.

Scene: a unit sphere of about ``--faces`` triangles (a latitude-longitude sphere sized to the
face budget; the exact count is printed) with random vertex colours, seen by 4 orbit cameras at
distance 2.5 (49.1 deg vertical field of view) at R x R pixels. "fwd+bwd" renders RGB, alpha,
depth and normals with silhouette antialiasing and back-propagates the sum of all outputs to the
vertex positions and colours.

    python3 benchmarks/mesh_render.py --device cpu --resolution 128     # target <= 1 s
    python3 benchmarks/mesh_render.py --device cuda --resolution 512    # target <= 15 ms (H200)

Times are the minimum (and median) over ``--repeats`` runs after ``--warmup`` runs, synchronised
on CUDA. On CUDA two rows: ``eager`` (``render_mesh`` of a new ``Mesh`` each step, validation
included) and ``graphed`` (``GraphedMeshRenderer``: the same forward and backward replayed from
CUDA graphs; its one-time recording is timed separately). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from gs_core import Cameras, Mesh
from gs_core.rendering.mesh_render import GraphedMeshRenderer, render_mesh


def make_sphere(faces: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit latitude-longitude sphere with n + 1 rings of 2n vertices and 4 n^2 faces (those
    touching the poles are degenerate, as in any UV sphere: the rasteriser skips them)."""
    n = max(4, round(math.sqrt(faces / 4)))
    theta = torch.linspace(0, math.pi, n + 1)[:, None]
    phi = torch.arange(2 * n)[None] * (math.pi / n)
    v = torch.stack(
        [theta.sin() * phi.cos(), theta.cos().expand(-1, 2 * n), theta.sin() * phi.sin()], -1
    ).reshape(-1, 3)
    i = torch.arange(n)[:, None] * (2 * n)
    j = torch.arange(2 * n)[None]
    a, b = i + j, i + (j + 1) % (2 * n)
    c, d = a + 2 * n, b + 2 * n
    f = torch.cat([torch.stack([a, c, b], -1), torch.stack([b, c, d], -1)]).reshape(-1, 3)
    return v.to(device), f.to(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler op table")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    v, f = make_sphere(args.faces, device)
    colors = torch.rand(v.shape[0], 3, device=device, generator=None)
    az = [360.0 * i / args.cameras + 15.0 for i in range(args.cameras)]
    cams = Cameras.orbit(
        az, 15.0, radius=2.5, width=args.resolution, height=args.resolution, device=device
    )

    def loss_of(out) -> torch.Tensor:
        return out.rgb.sum() + out.alpha.sum() + out.depth.sum() + out.normal.sum()

    def step() -> None:
        vv = v.clone().requires_grad_()
        cc = colors.clone().requires_grad_()
        loss_of(render_mesh(Mesh(vv, f, vertex_colors=cc), cams)).backward()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed_runs(fn) -> list[float]:
        for _ in range(args.warmup):
            fn()
        sync()
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append((time.perf_counter() - t0) * 1000)
        return ts

    rows = [("eager", timed_runs(step))]
    if device.type == "cuda":
        renderer = GraphedMeshRenderer(f)

        def graphed_step() -> None:
            vv = v.clone().requires_grad_()
            cc = colors.clone().requires_grad_()
            loss_of(renderer(vv, cams, vertex_colors=cc)).backward()

        t0 = time.perf_counter()
        graphed_step()  # records the graphs
        sync()
        record_ms = (time.perf_counter() - t0) * 1000
        rows.append(("graphed", timed_runs(graphed_step)))
        # the graphs must compute what the eager path does
        vv = v.clone().requires_grad_()
        ref = render_mesh(Mesh(vv, f, vertex_colors=colors), cams)
        loss_of(ref).backward()
        vg = v.clone().requires_grad_()
        out = renderer(vg, cams, vertex_colors=colors)
        loss_of(out).backward()
        diff = max(
            float((a - b).abs().max()) for a, b in zip(_images(out), _images(ref), strict=True)
        )
        gdiff = float((vg.grad - vv.grad).abs().max() / vv.grad.abs().max())
        print(
            f"graphed: recorded in {record_ms:.0f} ms; max |image difference| to eager {diff:.2e}, "
            f"max vertex-gradient difference {gdiff:.2e} of the largest"
        )
    if args.profile:
        from gs_core.rendering.mesh_raster import rasterize

        def timed(label, fn) -> None:
            fn()
            sync()
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                fn()
            sync()
            print(f"{label}: {(time.perf_counter() - t0) * 1000 / args.repeats:.2f} ms")

        mesh = Mesh(v, f, vertex_colors=colors)
        with torch.no_grad():
            timed("rasterize (no grad)", lambda: rasterize(v, f, cams))
            timed("render_mesh fwd, no antialias", lambda: render_mesh(mesh, cams, antialias=False))
            timed("render_mesh fwd", lambda: render_mesh(mesh, cams))
        timed("fwd+bwd", step)
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts, record_shapes=False) as prof:
            step()
            sync()
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=60))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print("| device | mode | faces | cameras | resolution | fwd+bwd min ms | median ms |")
    print("|---|---|---|---|---|---|---|")
    for mode, ts in rows:
        print(
            f"| {name} ({torch.get_num_threads()} threads) | {mode} | {f.shape[0]:,} "
            f"| {args.cameras} | {args.resolution} | {min(ts):.1f} | {statistics.median(ts):.1f} |"
        )


def _images(out) -> list[torch.Tensor]:
    return [out.rgb.detach(), out.alpha.detach(), out.depth.detach(), out.normal.detach()]


if __name__ == "__main__":
    main()
