"""FlexiCubes extraction speed (Compress3D's decoder head): one shape, forward and
forward + backward, at grid resolutions 64, 90 (Compress3D's grid, Sec. 4.1) and 128.

The field is what a decoder emits early in training: a sphere-and-torus SDF with noise, small
random deformations and random cube weights (the time depends on the number of surface cubes,
not on the values). Forward is the training-mode extraction (four-triangle split, L_dev);
backward is a loss over vertices plus L_dev back to SDF, deformation and weights. ``inference``
is the two-triangle split without autograd.

    python3 benchmarks/flexicubes.py                              # CUDA if present, else CPU
    python3 benchmarks/flexicubes.py --device cpu --resolutions 32,64 --iters 2
    python3 benchmarks/flexicubes.py --device cuda --json flexicubes.json

Prints a markdown table of milliseconds per shape (mean over ``--iters`` after ``--warmup``
untimed runs, the device synchronised around each timing); ``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gs_method_compress3d.flexicubes import flexicubes_mesh, grid_vertices


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn, device: torch.device, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def make_inputs(res: int, device: torch.device, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = grid_vertices(res)
    sphere = (x - torch.tensor([0.12, 0.0, 0.0])).norm(dim=-1) - 0.2
    ring = torch.sqrt(x[:, 0] ** 2 + x[:, 2] ** 2) - 0.25
    torus = torch.sqrt(ring**2 + x[:, 1] ** 2) - 0.08
    sdf = torch.minimum(sphere, torus) + (0.2 / res) * torch.randn(x.shape[0], generator=g)
    deform = 0.3 * torch.randn(x.shape[0], 3, generator=g)
    weights = 0.3 * torch.randn(res**3, 21, generator=g)
    return tuple(t.to(device=device, dtype=dtype).requires_grad_() for t in (sdf, deform, weights))


def bench(res: int, device: torch.device, dtype: torch.dtype, iters: int, warmup: int) -> dict:
    sdf, deform, weights = make_inputs(res, device, dtype)
    direction = torch.tensor([0.3, -0.2, 0.9], device=device, dtype=dtype)

    def forward():
        return flexicubes_mesh(sdf, deform, weights, res, training=True)

    def forward_backward():
        out = forward()
        loss = (out.vertices @ direction).square().mean() + out.l_dev
        loss.backward()
        for t in (sdf, deform, weights):
            t.grad = None

    def inference():
        with torch.no_grad():
            return flexicubes_mesh(sdf, deform, weights, res, training=False)

    out = forward()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row = {
        "device": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "resolution": res,
        "vertices": int(out.vertices.shape[0]),
        "faces": int(out.faces.shape[0]),
        "forward_ms": 1e3 * time_fn(forward, device, iters, warmup),
        "forward_backward_ms": 1e3 * time_fn(forward_backward, device, iters, warmup),
        "inference_ms": 1e3 * time_fn(inference, device, iters, warmup),
    }
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--resolutions", default="64,90,128", help="comma-separated grid sizes")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp64"])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "fp64": torch.float64}[args.dtype]
    resolutions = [int(r) for r in args.resolutions.split(",") if r]

    rows = [bench(r, device, dtype, args.iters, args.warmup) for r in resolutions]
    print("| device | res | vertices | faces | forward ms | fwd+bwd ms | inference ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['device']} | {r['resolution']} | {r['vertices']} | {r['faces']} | "
            f"{r['forward_ms']:.2f} | {r['forward_backward_ms']:.2f} | {r['inference_ms']:.2f} |"
        )
    if args.json:
        from gs_core.io.atomic import atomic_write_text

        text = json.dumps({"rows": rows}, indent=2, allow_nan=False)
        atomic_write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
