"""DD3G speed: per-object inference time at batch 1 and batch 8, eager and CUDA-graphed, with
the time of the image encoder, Pattern Extraction (PE), the Progressive Decoding backbone (PD)
and the heads.

Paper preset sizes (DINOv2-base at 224, 4 views of 4 x 32 x 32 noise, 307 tokens x 512 =
157,184 Gaussians) with random weights, which time the same as trained ones. The paper reports
0.06 s per object; the targets (issue #19) are <= 10 ms per object at batch 1 and <= 2.5 ms at
batch 8, bf16, on an H200.

    python3 benchmarks/dd3g.py                                     # paper preset, CUDA, bf16
    python3 benchmarks/dd3g.py --preset tiny --device cpu --dtype fp32 --iters 2 --batches 1

Prints a markdown table (and ``--json OUT`` writes it).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn, device: torch.device, iters: int, warmup: int) -> float:
    """Mean seconds per call of ``fn``."""
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="paper")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--batches", default="1,8")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)

    from gs_core.cuda_graphs import GraphedCallable
    from gs_core.testing import tiny_rgba_images
    from gs_method_dd3g import DD3G, DD3GConfig
    from gs_method_dd3g.cameras import plucker_inputs

    dev = torch.device(a.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    cfg = DD3GConfig.preset(a.preset)
    if cfg.encoder.kind == "dinov2":
        cfg = cfg.with_overrides({"encoder.pretrained": None})  # random weights time the same
    torch.manual_seed(0)
    model = DD3G(cfg).to(dev, dtype).eval()
    params = sum(p.numel() for p in model.parameters())
    gen = model.generator
    rows = []
    for b in (int(x) for x in a.batches.split(",")):
        images = tiny_rgba_images(b, cfg.encoder.image_size).to(dev)
        rgb = model.input_rgb(images).to(dtype)
        az, el, noise = model.sample_inputs(b, torch.Generator(device=dev).manual_seed(0))
        rays = plucker_inputs(model.view_cameras(az, el), cfg.latent_size).to(dtype)
        noise = noise.to(dtype)
        with torch.no_grad():
            tokens = model.encoder(rgb)
            pd_in = gen.tokens(tokens, noise, rays)
            levels = gen.decoder.levels(pd_in)
        stages = _stages(model, rgb, noise, rays, tokens, pd_in, levels)
        for mode in ("eager", "graphed") if dev.type == "cuda" else ("eager",):
            row = {"batch": b, "mode": mode}
            for name, (fn, module) in stages.items():
                call = fn
                if mode == "graphed":
                    graphed = GraphedCallable(lambda fn=fn: _tensors(fn()), module)
                    call = graphed
                with torch.no_grad():
                    row[f"{name}_ms"] = 1e3 * time_fn(call, dev, a.iters, a.warmup)
            row["per_object_ms"] = row["total_ms"] / b
            rows.append(row)
    print(
        f"DD3G {a.preset}: {params / 1e6:.1f} M parameters, {cfg.num_gaussians():,} Gaussians, "
        f"{a.dtype}, {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}"
    )
    print("| batch | mode | encoder ms | PE ms | PD ms | heads ms | total ms | per object ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['batch']} | {r['mode']} | {r['encoder_ms']:.2f} | {r['pe_ms']:.2f} | "
            f"{r['pd_ms']:.2f} | {r['heads_ms']:.2f} | {r['total_ms']:.2f} | "
            f"{r['per_object_ms']:.2f} |"
        )
    if a.json:
        from gs_core.io.atomic import atomic_write_text

        atomic_write_text(a.json, json.dumps({"params": params, "rows": rows}, indent=2) + "\n")
    return rows


def _stages(model, rgb, noise, rays, tokens, pd_in, levels) -> dict:
    """Each timed stage as ``(call, module)``; the inputs are fixed per batch size."""
    gen = model.generator
    return {
        "encoder": (lambda: model.encoder(rgb), model.encoder),
        "pe": (lambda: gen.tokens(tokens, noise, rays), gen),
        "pd": (lambda: gen.decoder.levels(pd_in), gen.decoder),
        "heads": (lambda: gen.decoder.decode(levels), gen.decoder),
        "total": (lambda: gen.decoder(gen.tokens(model.encoder(rgb), noise, rays)), model),
    }


def _tensors(out):
    """Graph outputs must be tensors: PD's dict minus its list of levels."""
    if isinstance(out, dict):
        return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
    if isinstance(out, list):
        return tuple(out)
    return out


if __name__ == "__main__":
    main()
