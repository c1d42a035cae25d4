"""Encode time per image / per point cloud of the gs-encoders models, at the sizes the papers use.

- DINOv2-base at AGG's 256x256 input (snapped to 252, an 18x18 patch grid) -> CLS + 324 tokens;
- OpenCLIP ViT-bigG-14 image embedding (Compress3D's 1280-d condition; 224x224 input);
- CLIP ViT-L/14 image embedding (the CLIP-similarity metric; 224x224 input);
- OpenShape PointBERT ViT-bigG-14 shape embedding of a 10,000-point xyz+rgb cloud (Compress3D's
  e_s), and its farthest-point sampling + ball query alone.

Weights are random (the hubs are often unreachable where this runs); run time does not depend on
the values. Prints a markdown table. GPU: ``python3 benchmarks/encoders.py``; CPU smoke test:
``python3 benchmarks/encoders.py --device cpu --dtype fp32 --batches 1 --iters 1 --warmup 0
--clip-models ViT-B-32``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _time(fn: Callable[[], object], device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds of one ``fn()`` call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _peak_gib(device: torch.device) -> str:
    if device.type != "cuda":
        return "-"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f}"


def _reset(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=256, help="input images (AGG: 256)")
    ap.add_argument("--points", type=int, default=10_000, help="points per cloud (OpenShape: 10k)")
    ap.add_argument("--clip-models", nargs="*", default=["ViT-bigG-14", "ViT-L-14"])
    ap.add_argument("--skip", nargs="*", default=[], choices=["dinov2", "clip", "openshape"])
    args = ap.parse_args()

    from gs_core.points import ball_query, farthest_point_sample, gather_points
    from gs_encoders import ClipEncoder, DinoV2Encoder, OpenShapeEncoder, prepare_point_cloud

    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    rows: list[tuple] = []

    def bench(name: str, size: str, make_input: Callable[[int], object], run: Callable) -> None:
        for b in args.batches:
            x = make_input(b)
            _reset(device)
            with torch.inference_mode():
                sec = _time(lambda x=x: run(x), device, args.warmup, args.iters)
            rows.append((name, size, b, sec * 1e3, sec * 1e3 / b, b / sec, _peak_gib(device)))
            print(f"  {name} batch {b}: {sec * 1e3:.2f} ms", flush=True)

    s = args.image_size

    def images(b: int) -> torch.Tensor:
        return torch.rand(b, 3, s, s, device=device)

    if "dinov2" not in args.skip:
        with torch.device(device):
            enc = DinoV2Encoder("base", pretrained=None, image_size=s).to(dtype)
        g = enc.grid_size
        bench("DINOv2-base (AGG)", f"{s}->{enc.image_size[0]}px, {g[0]}x{g[1]} tokens", images, enc)
        del enc
    if "clip" not in args.skip:
        for name in args.clip_models:
            enc = ClipEncoder(name, pretrained=None, device=device).to(dtype)
            bench(
                f"CLIP {name} image",
                f"{s}->{enc.image_size[0]}px, {enc.embed_dim}-d",
                images,
                enc.encode_image,
            )
            del enc
    if "openshape" not in args.skip:
        with torch.device(device):
            enc = OpenShapeEncoder().to(dtype).eval()
        n = args.points

        def clouds(b: int) -> torch.Tensor:
            xyz = torch.randn(b, n, 3, device=device)
            return prepare_point_cloud(xyz, torch.rand(b, n, 3, device=device), num_points=None)

        cfg = enc.config
        bench("OpenShape PointBERT-G14", f"{n} pts xyz+rgb, {cfg.out_dim}-d", clouds, enc)

        def grouping(p: torch.Tensor):
            xyz = p[..., :3]
            c = gather_points(xyz, farthest_point_sample(xyz, cfg.num_patches))
            return ball_query(xyz, c, cfg.ball_radius, cfg.group_size)

        bench(
            "  of which FPS + ball query", f"{cfg.num_patches} x {cfg.group_size}", clouds, grouping
        )
        del enc

    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"\n{dev}, {args.dtype} weights, median of {args.iters} after {args.warmup} warm-up; random weights\n"
    )
    print("| model | input | batch | ms / batch | ms / item | items / s | peak GiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, size, b, ms, per, ips, mem in rows:
        print(f"| {name} | {size} | {b} | {ms:.2f} | {per:.2f} | {ips:.1f} | {mem} |")


if __name__ == "__main__":
    main()
