"""Benchmark the network blocks at the sizes the papers use: forward and forward+backward.

The blocks of gs-nets, the point operations of ``gs_core.points`` and AGG's own assemblies
(``gs_method_agg.point_upsampler``, ``gs_method_agg.triplane_generator``).

    python3 benchmarks/nets.py                       # GPU, bf16 autocast, paper sizes
    python3 benchmarks/nets.py --device cpu --tiny   # CPU smoke test at tiny sizes

Prints a markdown table: median milliseconds over ``--iters`` runs after ``--warmup`` runs, and
the peak memory of one forward+backward (CUDA only). Sizes:

* AGG super-resolution: ``PointUpsampler`` (paper preset) on 4,096 -> 16,384 points with 325
  DINOv2-base tokens (768-d); its parts (FPS, kNN, PVConv) at 16,384 points.
* AGG texture field: ``TriplaneGenerator`` (paper preset) from the same tokens.
* DD3G Progressive Decoding: 6 ``PointTransformerBlock`` (512-d, k = 16) over 307 tokens and a
  head decoding each token into 512 Gaussians (157,184 per object), batch 12 (72 over 6 GPUs).
* DD3G Pattern Extraction: ``SpatialTransformer3D`` on 4 views of 32x32 latents (320 channels).
* Compress3D: ``TriplaneResBlock`` (TriConv) on 3 x 128 x 64 x 64 triplanes.
* LGM big: ``SplatterUNet`` on 4 x 256x256 views (9 channels) -> 65,536 Gaussians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from gs_core.points import farthest_point_sample, knn
from gs_method_agg.point_upsampler import PointUpsampler, PointUpsamplerConfig
from gs_method_agg.triplane_generator import TriplaneGenerator, TriplaneGeneratorConfig
from gs_nets import (
    PointTransformerStack,
    PVConv,
    SpatialTransformer3D,
    SplatterUNet,
    SplatterUNetConfig,
    TriplaneResBlock,
)


class Case:
    def __init__(
        self,
        name: str,
        size: str,
        build: Callable[[], tuple[torch.nn.Module | None, Callable]],
        backward: bool = True,
    ):
        self.name, self.size, self.build, self.backward = name, size, build, backward


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], None], device: torch.device, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _loss(out) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        return sum(o.float().square().mean() for o in out if o.requires_grad)
    return out.float().square().mean()


def cases(args, dev: torch.device) -> list[Case]:
    tiny = args.tiny
    B = 1 if tiny else args.batch
    n_coarse = 64 if tiny else 4096
    ctx_tokens, ctx_dim = (9, 16) if tiny else (325, 768)

    def rand(*shape, grad=False):
        return torch.randn(*shape, device=dev, requires_grad=grad)

    def upsampler():
        cfg = PointUpsamplerConfig.preset("tiny" if tiny else "paper")
        net = PointUpsampler(cfg).to(dev)
        xyz, feats, ctx = (
            rand(B, n_coarse, 3),
            rand(B, n_coarse, cfg.in_channels),
            rand(B, ctx_tokens, cfg.context_dim),
        )
        return net, lambda: net(xyz, feats, ctx)

    def triplane_gen():
        cfg = TriplaneGeneratorConfig.preset("tiny" if tiny else "paper")
        net = TriplaneGenerator(cfg).to(dev)
        ctx, cls = rand(B, ctx_tokens, cfg.context_dim), rand(B, cfg.context_dim)
        return net, lambda: net(ctx, cls)

    n_fine = 4 * n_coarse

    def fps():
        xyz = rand(B, n_fine, 3)
        return None, lambda: farthest_point_sample(xyz, n_coarse)

    def knn_case():
        xyz = rand(B, n_fine, 3)
        return None, lambda: knn(xyz, xyz, 16)

    def pvconv():
        c = 8 if tiny else 64
        net = PVConv(c, c, resolution=8 if tiny else 32, with_se=True).to(dev)
        xyz, f = rand(B, n_fine, 3), rand(B, n_fine, c, grad=True)
        return net, lambda: net(f, xyz)

    def dd3g_pd():
        dim, tokens, depth, batch = (32, 20, 2, 1) if tiny else (512, 307, 6, args.dd3g_batch)
        stack = PointTransformerStack(dim, depth, share_planes=8, k=16).to(dev)
        head = torch.nn.Linear(dim, (8 if tiny else 512) * 14).to(dev)
        x, pos = rand(batch, tokens, dim, grad=True), rand(batch, tokens, 3)
        net = torch.nn.ModuleDict({"stack": stack, "head": head})
        return net, lambda: head(stack(x, pos)[-1]).reshape(batch, -1, 14)

    def dd3g_pe():
        c, hw, ctx_d = (32, 8, 16) if tiny else (320, 32, 1024)
        net = SpatialTransformer3D(
            c, num_heads=8 if not tiny else 4, context_dim=ctx_d, groups=32 if not tiny else 8
        ).to(dev)
        torch.nn.init.normal_(net.proj_out.weight, std=0.02)
        x, ctx = rand(B * 4, c, hw, hw, grad=True), rand(B, 77 if not tiny else 5, ctx_d)
        return net, lambda: net(x, 4, ctx)

    def compress3d():
        c, r = (16, 8) if tiny else (128, 64)
        net = TriplaneResBlock(c, c, emb_dim=c * 4, groups=8 if tiny else 32).to(dev)
        planes, emb = rand(B, 3, c, r, r, grad=True), rand(B, c * 4)
        return net, lambda: net(planes, emb)

    def lgm():
        cfg = SplatterUNetConfig.preset("tiny" if tiny else "big")
        net = SplatterUNet(cfg).to(dev)
        views = rand(args.lgm_batch if not tiny else 1, 4, 9, cfg.input_size, cfg.input_size)
        return net, lambda: net(views)

    t = "tiny" if tiny else ""
    return [
        Case("AGG PointUpsampler", t or f"B={B}, 4,096 -> 16,384 pts, 325x768 ctx", upsampler),
        Case("AGG TriplaneGenerator", t or f"B={B}, 3x32x32 queries -> 3x32x64x64", triplane_gen),
        Case("farthest_point_sample", t or f"B={B}, 16,384 -> 4,096", fps, backward=False),
        Case("knn (k=16)", t or f"B={B}, 16,384 x 16,384", knn_case, backward=False),
        Case("PVConv (r=32, SE)", t or f"B={B}, 16,384 pts, 64 -> 64 ch", pvconv),
        Case(
            "DD3G PD: 6 PointTransformerBlocks + head",
            t or f"B={args.dd3g_batch}, 307 tok x 512 Gaussians",
            dd3g_pd,
        ),
        Case("DD3G PE: SpatialTransformer3D", t or f"B={B}, 4 views x 32x32 x 320 ch", dd3g_pe),
        Case("Compress3D TriplaneResBlock", t or f"B={B}, 3x128x64x64", compress3d),
        Case("LGM big SplatterUNet", t or f"B={args.lgm_batch}, 4 x 256x256 -> 65,536 G", lgm),
    ]


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="autocast dtype")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (CPU smoke test)")
    p.add_argument("--batch", type=int, default=4, help="batch of the AGG / Compress3D / PE cases")
    p.add_argument("--dd3g-batch", type=int, default=12)
    p.add_argument("--lgm-batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--only", default="", help="comma-separated substrings of case names to run")
    args = p.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    wanted = [s.strip().lower() for s in args.only.split(",") if s.strip()]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"gs-nets blocks on {name}, autocast {args.dtype}, torch {torch.__version__}\n")
    print("| block | size | params (M) | fwd ms | fwd+bwd ms | peak fwd+bwd GiB |")
    print("|---|---|---:|---:|---:|---:|")
    for case in cases(args, dev):
        if wanted and not any(w in case.name.lower() for w in wanted):
            continue
        torch.manual_seed(0)
        try:
            net, fn = case.build()
            n_params = sum(q.numel() for q in net.parameters()) / 1e6 if net is not None else 0.0
            if net is not None:
                net.train()

            def fwd(fn=fn):
                with (
                    torch.no_grad(),
                    torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32),
                ):
                    fn()

            def fwd_bwd(fn=fn, net=net):
                with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
                    loss = _loss(fn())
                loss.backward()
                if net is not None:
                    net.zero_grad(set_to_none=True)

            t_fwd = _time(fwd, dev, args.warmup, args.iters)
            t_bwd, peak = float("nan"), float("nan")
            if case.backward:
                t_bwd = _time(fwd_bwd, dev, args.warmup, args.iters)
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                    fwd_bwd()
                    _sync(dev)
                    peak = torch.cuda.max_memory_allocated(dev) / 2**30
            print(
                f"| {case.name} | {case.size} | {n_params:.1f} | {t_fwd:.2f} | {t_bwd:.2f} | {peak:.2f} |",
                flush=True,
            )
        except torch.OutOfMemoryError:
            print(f"| {case.name} | {case.size} | | OOM | OOM | |", flush=True)
        finally:
            net = fn = None
            if dev.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
