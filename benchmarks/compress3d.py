"""Compress3D speed: image -> mesh + Gaussians at batch 1, and the Table 2 / 3 training-step times.

Paper preset sizes (OpenCLIP ViT-bigG-14 image encoder, 24M prior with 50 DDIM steps, 855M
triplane UNet with 50 DDIM steps of three guidance branches batched in one forward, decoder to
128^2 x 32 planes, FlexiCubes at 90^3, 16,384 Gaussians on the mesh) with random weights, which
time the same as trained ones. The paper reports 7 s per shape on an A100 (Table 1); the target
here is <= 1.4 s on an H200 in bf16 at batch 1. Random weights give the SDF head's sphere
initialisation, so FlexiCubes extracts a real surface.

    python3 benchmarks/compress3d.py                          # paper preset, CUDA, bf16
    python3 benchmarks/compress3d.py --training               # also Table 2 / 3 step times
    python3 benchmarks/compress3d.py --preset tiny --device cpu --dtype fp32 --iters 1 --training
    python3 benchmarks/compress3d.py --preset tiny --device cpu --set embeddings.kind=openshape \
        embeddings.clip_model=ViT-B-32 embeddings.dim=512   # the OpenCLIP path, small

``--training`` times one autoencoder training step (forward + backward, one object of
``--points`` points, ``--views`` renders at ``--render`` px) with the attention volume at
r'' = 128 / 64 / 32 and without attention: the paper's Table 3 ordering (128 slowest, 32
fastest) and Table 2's (with attention slightly slower than without).

Prints a markdown table (and ``--json OUT`` writes the numbers).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(preset: str, device: torch.device, overrides: dict | None = None, sets=()):
    from gs_method_compress3d.config import Compress3DConfig
    from gs_method_compress3d.model import Compress3D

    cfg = Compress3DConfig.preset(preset, **(overrides or {}))
    if sets:
        cfg = cfg.with_overrides(list(sets))
    torch.manual_seed(0)
    with torch.device(device):
        model = Compress3D(cfg)
    if cfg.embeddings.kind == "openshape":
        from gs_encoders.clip import ClipEncoder

        # the paper's image encoder at full size, randomly initialised (timing only)
        model.set_external_encoders(
            image=ClipEncoder(cfg.embeddings.clip_model, pretrained=None, device=device)
        )
    return model.eval()


def image_input(size: int, device: torch.device) -> torch.Tensor:
    from gs_core.testing import tiny_rgba_images

    return tiny_rgba_images(1, size).to(device)


def bench_inference(args, device: torch.device, dtype: torch.dtype) -> dict:
    model = build(args.preset, device, sets=args.set)
    ext = model.__dict__.get("_external_encoders", {})
    if "image" in ext:
        ext["image"].to(dtype)
    images = image_input(args.image_size, device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    runs = []
    with autocast:
        for i in range(args.warmup + args.iters):
            _sync(device)
            t0 = time.perf_counter()
            out = model.generate(
                images, seed=i, cuda_graph=args.cuda_graph and device.type == "cuda"
            )
            _sync(device)
            wall = time.perf_counter() - t0
            if i >= args.warmup:
                runs.append({**out.timings, "wall": wall})
    mesh = out.meshes[0]
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
    return {
        "preset": args.preset,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "cuda_graph": bool(args.cuda_graph and device.type == "cuda"),
        "faces": int(mesh.faces.shape[0]),
        "gaussians": int(out.gaussians.num_gaussians),
        "seconds": mean,
        "parameters_millions": {
            "autoencoder": sum(p.numel() for p in model.autoencoder.parameters()) / 1e6,
            "prior": sum(p.numel() for p in model.prior.parameters()) / 1e6,
            "unet": sum(p.numel() for p in model.unet.parameters()) / 1e6,
        },
    }


def bench_training(args, device: torch.device, dtype: torch.dtype) -> dict:
    """One autoencoder step per variant (Table 2 / 3), on a synthetic object: a sphere's
    coloured surface points and its analytic renders are enough to time the same work."""
    from gs_core.cameras import Cameras
    from gs_method_compress3d.config import Compress3DConfig

    base = Compress3DConfig.preset(args.preset)
    r = base.encoder.volume_resolution
    variants = [("no attention", {"attention": {"enabled": False}})]
    # the paper's 128 / 64 / 32 (r = 128): the volume, then halved twice
    for rr in (r, r // 2, r // 4):
        if rr >= 1 and r % rr == 0 and rr % base.encoder.latent_resolution == 0:
            variants.append((f"attention r''={rr}", {"attention": {"volume_resolution": rr}}))
    out = {}
    g = torch.Generator(device=device).manual_seed(0)
    pts = torch.randn(1, args.points, 3, device=device, generator=g)
    pts = 0.35 * pts / pts.norm(dim=-1, keepdim=True)
    col = torch.rand(1, args.points, 3, device=device, generator=g)
    cams = Cameras.orbit(
        azimuths_deg=[360.0 * k / args.views for k in range(args.views)],
        elevations_deg=20.0,
        radius=1.5,
        fov_deg=49.1,
        width=args.render,
        height=args.render,
    ).to(device)
    batch = {
        "points": pts,
        "point_colors": col,
        "target_viewmats": cams.viewmats[None],
        "target_Ks": cams.Ks[None],
        "target_rgb": torch.ones(1, args.views, args.render, args.render, 3, device=device),
        "target_alpha": torch.zeros(1, args.views, args.render, args.render, 1, device=device),
        "target_depth": torch.zeros(1, args.views, args.render, args.render, 1, device=device),
    }
    for name, over in variants:
        model = build(
            args.preset, device, {**over, "embeddings": {"kind": "procedural"}}, sets=args.set
        )
        module = model.training_module("autoencoder")
        opt = torch.optim.AdamW(model.autoencoder.parameters(), lr=1e-5)
        autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
        times = []
        for i in range(args.warmup + args.iters):
            _sync(device)
            t0 = time.perf_counter()
            with autocast:
                terms = module.autoencoder_terms(batch)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            _sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        out[name] = sum(times) / len(times)
        del model, module, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    ordered = [out[k] for k in out if k.startswith("attention")]
    out["table3_ordering_holds"] = all(a >= b for a, b in zip(ordered, ordered[1:], strict=False))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false")
    ap.add_argument("--training", action="store_true", help="also time autoencoder steps")
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--render", type=int, default=512)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    if device.type == "cpu":
        torch.set_num_threads(1)

    res = {"inference": bench_inference(args, device, dtype)}
    inf = res["inference"]
    s = inf["seconds"]
    print(
        f"Compress3D `{args.preset}` on {inf['device']}, {inf['dtype']}, batch 1, "
        f"CUDA graphs {'on' if inf['cuda_graph'] else 'off'}: {inf['faces']} faces, "
        f"{inf['gaussians']} Gaussians"
    )
    print()
    print("| stage | seconds |")
    print("|---|---:|")
    for k in (
        "image_embedding",
        "prior",
        "unet",
        "decode",
        "flexicubes",
        "gaussians",
        "total",
        "wall",
    ):
        if k in s:
            print(f"| {k} | {s[k]:.4f} |")
    if args.training:
        res["training_step"] = bench_training(args, device, dtype)
        print()
        print(
            f"| autoencoder step ({args.points} points, {args.views} x {args.render}^2) | seconds |"
        )
        print("|---|---:|")
        for k, v in res["training_step"].items():
            print(f"| {k} | {v if isinstance(v, bool) else f'{v:.4f}'} |")
    if args.json:
        from gs_core.io.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
