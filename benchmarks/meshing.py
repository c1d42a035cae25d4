"""Benchmark Gaussians -> textured mesh (gs_core.meshing), stage by stage, as ``gs3d mesh
--texture 1024`` runs it: density grid, marching cubes, cleaning, decimation, vertex colours
(``gaussians_to_mesh``), UV unwrapping (xatlas) and texture baking (``bake_texture``: 26 views
of the Gaussians at 512 x 512, visibility by the mesh rasteriser, hole filling, dilation).

Scenes: N Gaussians on the surface of a procedural mug (category mug, index 0, seed 7, radius
0.5), at area-uniform surface samples with the object's colours, oriented by its normals, with
in-plane std ``sqrt(area / N)`` and half that along the normal, opacity 0.8: a stand-in for a
fitted 3DGS scene of that object.

    python3 benchmarks/meshing.py                                  # CPU, 16k and 100k Gaussians
    python3 benchmarks/meshing.py --device cuda --backend torch    # the GPU figures

Every stage is timed once (the device synchronised around it) after an untimed warm-up on a
small scene (kernel compilation, library loading). Prints a markdown table in seconds.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from gs_core import Gaussians
from gs_core.meshing import bake_texture, gaussians_to_mesh, unwrap_uv
from gs_core.meshing.sampling import normal_to_quat
from gs_core.procedural import sample_surface
from gs_core.procedural.surface import rebuild_object

STAGES = ("density", "marching_cubes", "clean", "decimate", "colors", "uv", "bake")


def mug_gaussians(n: int, device: torch.device) -> Gaussians:
    """``n`` Gaussians on the mug's visible surface (see the module docstring)."""
    obj = rebuild_object("mug", 0, seed=7)
    pts, cols, nrm = sample_surface(obj, n, np.random.default_rng(0))
    area = float(sum(p.shape.area() for p in obj.parts))
    sigma = math.sqrt(area / n)
    scales = torch.tensor([sigma, sigma, 0.5 * sigma]).expand(n, 3)
    normals = torch.from_numpy(nrm)
    return Gaussians.from_colors(
        means=torch.from_numpy(pts),
        colors=torch.from_numpy(cols).clamp(0, 1),
        scales=scales.contiguous(),
        opacities=0.8,
        quats=normal_to_quat(normals),
    ).to(device)


def run(g: Gaussians, args, device: torch.device) -> tuple[dict[str, float], int]:
    """Seconds per stage and the final face count."""
    timings: dict[str, float] = {}
    mesh = gaussians_to_mesh(g, resolution=args.resolution, faces=args.faces, timings=timings)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    t0 = time.perf_counter()
    mesh = unwrap_uv(mesh)
    sync()
    timings["uv"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bake_texture(
        mesh,
        g,
        size=args.texture,
        resolution=min(512, max(64, args.texture)),  # as gs3d mesh
        backend=args.backend,
    )
    sync()
    timings["bake"] = time.perf_counter() - t0
    return timings, mesh.num_faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gaussians", type=int, nargs="+", default=[16_384, 100_000])
    ap.add_argument("--resolution", type=int, default=128, help="density grid per axis")
    ap.add_argument("--faces", type=int, default=100_000, help="face budget")
    ap.add_argument("--texture", type=int, default=1024, help="texture side")
    ap.add_argument("--backend", default="auto", help="Gaussian renderer for the bake")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    warm = argparse.Namespace(**{**vars(args), "resolution": 32, "faces": 2000, "texture": 64})
    run(mug_gaussians(2048, device), warm, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = []
    for n in args.gaussians:
        timings, faces = run(mug_gaussians(n, device), args, device)
        rows.append((n, faces, timings))
    print(
        f"{name} ({torch.get_num_threads()} threads), grid {args.resolution}^3, face budget "
        f"{args.faces:,}, texture {args.texture}^2, bake renders by '{args.backend}'"
    )
    print("| Gaussians | faces | " + " | ".join(STAGES) + " | total s |")
    print("|---:|---:|" + "---:|" * (len(STAGES) + 1))
    for n, faces, t in rows:
        cells = " | ".join(f"{t[s]:.2f}" for s in STAGES)
        print(f"| {n:,} | {faces:,} | {cells} | {sum(t.values()):.1f} |")


if __name__ == "__main__":
    main()
