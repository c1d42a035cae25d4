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


def time_fn(fn, args: tuple, device: torch.device, iters: int, warmup: int) -> float:
    """Mean seconds per call of ``fn(*args)``."""
    for _ in range(warmup):
        fn(*args)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn(*args)
    _sync(device)
    return (time.perf_counter() - t0) / iters


def build_model(preset: str, device: torch.device, dtype: torch.dtype):
    """DD3G with random weights, initialised on ``device`` (a CPU init of DINOv2-base plus PEPD
    in fp32 and a copy to the GPU costs more than the whole timing run) and cast to ``dtype``."""
    from gs_method_dd3g import DD3G, DD3GConfig

    cfg = DD3GConfig.preset(preset)
    if cfg.encoder.kind == "dinov2":
        cfg = cfg.with_overrides({"encoder.pretrained": None})  # random weights time the same
    torch.manual_seed(0)
    with torch.device(device):
        model = DD3G(cfg)
    return model.to(device, dtype).eval()


def measure(
    model, batch: int, dtype: torch.dtype, modes, iters: int, warmup: int, graph_cls=None
) -> list[dict]:
    """One row per mode (``eager`` / ``graphed``) of per-stage milliseconds at ``batch``.

    ``graph_cls`` wraps each stage for ``graphed`` (default
    :class:`gs_core.cuda_graphs.GraphedCallable`): it is called as ``graph_cls(fn, module)``
    and the result as ``graphed(*tensors)``, the stage's inputs."""
    from gs_core.testing import tiny_rgba_images
    from gs_method_dd3g.cameras import plucker_inputs

    if graph_cls is None:
        from gs_core.cuda_graphs import GraphedCallable as graph_cls
    cfg = model.config
    dev = model.device
    images = tiny_rgba_images(batch, cfg.encoder.image_size).to(dev)
    rgb = model.input_rgb(images).to(dtype)
    src = torch.Generator(device=dev).manual_seed(0)
    az, el, noise = model.sample_inputs(batch, src)
    rays = plucker_inputs(model.view_cameras(az, el), cfg.latent_size).to(dtype)
    noise = noise.to(dtype)
    gen = model.generator
    with torch.no_grad():
        tokens = model.encoder(rgb)
        pd_in = gen.tokens(tokens, noise, rays)
        levels = tuple(gen.decoder.levels(pd_in))
    # Each stage as (fn, its tensor inputs, the module whose weights it reads): a graphed
    # callable records fn(*inputs) and replays it for new inputs of the same signature.
    stages = {
        "encoder": (model.encoder, (rgb,), model.encoder),
        "pe": (gen.tokens, (tokens, noise, rays), gen),
        "pd": (gen.decoder.levels, (pd_in,), gen.decoder),
        "heads": (lambda *lv: gen.decoder.decode(list(lv)), levels, gen.decoder),
        "total": (model, (rgb, noise, rays), model),
    }
    rows = []
    for mode in modes:
        row = {"batch": batch, "mode": mode}
        for name, (fn, args, module) in stages.items():
            call = fn
            with torch.no_grad():
                if mode == "graphed":
                    call = graph_cls(lambda *xs, fn=fn: _tensors(fn(*xs)), module)
                    call(*args)  # the recording, outside the timed calls
                row[f"{name}_ms"] = 1e3 * time_fn(call, args, dev, iters, warmup)
        row["per_object_ms"] = row["total_ms"] / batch
        rows.append(row)
    return rows


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

    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks/dd3g.py: no CUDA device (use --device cpu --preset tiny)")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    t0 = time.perf_counter()
    model = build_model(a.preset, dev, dtype)
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    _say(
        f"built DD3G {a.preset} ({params / 1e6:.1f} M parameters) in {time.perf_counter() - t0:.1f} s"
    )
    modes = ("eager", "graphed") if dev.type == "cuda" else ("eager",)
    rows = []
    for b in (int(x) for x in a.batches.split(",")):
        for row in measure(model, b, dtype, modes, a.iters, a.warmup):
            _say(f"batch {b} {row['mode']}: {row['total_ms']:.2f} ms total")
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


def _say(line: str) -> None:
    """A progress line, flushed, so a run cut short still says how far it got."""
    print(line, flush=True)


def _tensors(out):
    """Graph outputs must be tensors: PD's dict minus its list of levels."""
    if isinstance(out, dict):
        return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
    if isinstance(out, list):
        return tuple(out)
    return out


if __name__ == "__main__":
    main()
