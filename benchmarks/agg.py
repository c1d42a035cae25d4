"""AGG speed: inference per object (batch 1 and a large batch) and training step time.

Paper preset sizes (DINOv2-base at 256, 4,096 -> 16,384 Gaussians) with random weights, which
time the same as trained ones. The paper reports 0.19 s per object (Table 1); the target here is
<= 15 ms per object at batch 1 in bf16 on an H100/H200.

    python3 benchmarks/agg.py                       # paper preset, CUDA, bf16
    python3 benchmarks/agg.py --preset tiny --device cpu --dtype fp32 --iters 2
    python3 benchmarks/agg.py --stages DATA_DIR     # also time each training stage on a dataset
    python3 benchmarks/agg.py --engine DATA_DIR --recipes before,resident,small --json OUT.json

``--engine`` times the engine's steady state (steps 10 onwards) of each training recipe and
samples how busy the GPU is meanwhile (``nvidia-smi`` utilisation: the share of time a kernel
runs). Recipes: ``before`` (the bundled model's first recipe: 1,024 -> 4,096 Gaussians, batch
16, DataLoader with 6 workers), ``resident`` (the same model and batch, views resident on the
GPU), ``small`` (the ``small`` preset: 4,096 -> 16,384 Gaussians, batch 32, resident views).

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn, device: torch.device, iters: int, warmup: int, after_warmup=None) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    if after_warmup is not None:
        after_warmup()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def build(preset: str, device: torch.device, overrides: list[str]):
    from gs_method_agg import AGG, AGGConfig

    cfg = AGGConfig.preset(preset)
    # Random weights time the same; do not fetch DINOv2.
    cfg = cfg.with_overrides(["encoder.pretrained=null", *overrides])
    torch.manual_seed(0)
    return AGG(cfg).to(device)


def inference_rows(
    model, device, dtype, batches: list[int], iters: int, graph_modes: list[bool]
) -> list[tuple]:
    from gs_core.testing import tiny_rgba_images

    rows = []
    model.eval()
    ac = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    for b, graph in [(b, g) for b in batches for g in graph_modes]:
        x = tiny_rgba_images(b, 256).to(device)
        timings: dict[str, float] = {}

        def run(x=x, timings=timings, graph=graph):
            with torch.no_grad(), ac:
                out = model.generate(x, cuda_graph=graph)
            for k, v in out.timings.items():
                timings[k] = timings.get(k, 0.0) + v

        try:
            dt = time_fn(run, device, iters, 3 if device.type == "cuda" else 1, timings.clear)
        except torch.OutOfMemoryError:
            rows.append((f"generate, batch {b}", "OOM", "", ""))
            continue
        parts = ", ".join(f"{k} {1000 * v / iters:.1f}" for k, v in timings.items() if k != "total")
        mode = "CUDA graphs" if graph else "eager"
        rows.append(
            (
                f"generate, batch {b} ({mode})",
                f"{1000 * dt / b:.2f} ms/object",
                f"{b / dt:.1f} objects/s",
                parts,
            )
        )
    return rows


def train_step_rows(
    model, device, dtype, batch: int, views: int, resolution: int, iters: int
) -> list[tuple]:
    """A full coarse+sr rendering-loss step on synthetic targets (no data loading)."""
    from gs_core.cameras import Cameras
    from gs_core.rendering import render
    from gs_core.testing import tiny_rgba_images
    from gs_losses import rgba_loss
    from gs_method_agg.model import canonical_gaussians

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    x = tiny_rgba_images(batch, resolution).to(device)
    cams = Cameras.orbit(
        torch.linspace(0, 270, views), 15.0, 1.5, width=resolution, height=resolution, device=device
    )
    tgt = torch.rand(batch, views, resolution, resolution, 3, device=device)
    tgt_a = torch.rand(batch, views, resolution, resolution, 1, device=device)
    rows = []
    for stage in ("coarse", "sr"):
        if stage == "sr" and model.sr is None:
            continue

        def step(stage=stage):
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                out = model(model.input_rgb(x), with_sr=stage == "sr")
            attrs = out["fine"] if stage == "sr" else out["coarse"]
            g = canonical_gaussians(attrs, 0.01 if stage == "sr" else 0.03)
            r = render(g, cams, background=1.0)
            loss = sum(rgba_loss(r.rgb, r.alpha, tgt, tgt_a).values())
            loss.backward()
            opt.step()

        try:
            dt = time_fn(step, device, iters, warmup=2 if device.type == "cuda" else 1)
        except torch.OutOfMemoryError:
            rows.append((f"train step ({stage})", "OOM", "", ""))
            continue
        mem = (
            f"peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
            if device.type == "cuda"
            else ""
        )
        rows.append(
            (
                f"train step ({stage}), batch {batch}, {views} views at {resolution}",
                f"{1000 * dt:.0f} ms/step",
                f"{batch / dt:.1f} objects/s",
                mem,
            )
        )
    return rows


def stage_rows(preset: str, data: str, device: torch.device, steps: int) -> list[tuple]:
    """Engine steps per second of each stage on a real dataset (data loading included)."""
    import tempfile

    from gs_core.training import Trainer

    rows = []
    model = build(preset, device, [])
    for stage in ("warmup", "coarse", "sr"):
        model.config = model.config.with_overrides(
            {
                "train.max_steps": steps,
                "train.progress": "off",
                "train.tensorboard": "off",
                "train.checkpoint_every": 100000,
            }
        )
        module = model.training_module(stage, data_dir=data)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            Trainer(module, f"{tmp}/run").fit()
            dt = time.perf_counter() - t0
        model.requires_grad_(True)
        bs = model.config.train.batch_size
        rows.append(
            (
                f"engine stage {stage} ({preset}), batch {bs}",
                f"{steps / dt:.2f} it/s",
                f"{1000 * dt / steps:.0f} ms/step",
                "incl. startup",
            )
        )
    return rows


# The first bundled model's recipe, as overrides of today's ``small`` preset.
BEFORE = {
    "num_gaussians": 1024,
    "coarse_scale": 0.04,
    "fine_scale": 0.02,
    "texture.upsample_factor": 2,
    "lr_schedule.warmup_steps": 100,
    "resident_data": False,
    "train.batch_size": 16,
    "train.num_workers": 6,
    "train.clip_grad_norm": None,
}
RECIPES = {
    "before": BEFORE,
    "resident": {**BEFORE, "resident_data": True, "train.num_workers": 0},
    "small": {},
}


class GpuBusy:
    """``nvidia-smi`` utilisation samples of one GPU every 100 ms, read by a thread."""

    def __init__(self, device: torch.device):
        import subprocess
        import threading

        uuid = str(torch.cuda.get_device_properties(device).uuid)
        ident = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
        self.samples: list[tuple[float, float]] = []
        self.proc = subprocess.Popen(
            ["nvidia-smi", "-i", ident, "--query-gpu=utilization.gpu",
             "--format=csv,noheader,nounits", "-lms", "100"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.strip())))
            except ValueError:
                continue

    def mean(self, t0: float, t1: float) -> float | None:
        vals = [v for t, v in self.samples if t0 <= t <= t1]
        return sum(vals) / len(vals) if vals else None

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def engine_throughput(
    recipe: str, data: str, device: torch.device, steps: int, skip: int = 10, busy=None,
    resident=None, stages=("warmup", "coarse", "sr"), overrides=(),
) -> dict[str, dict]:  # fmt: skip
    """Steady-state engine rate of each stage of ``recipe`` (steps ``skip`` .. ``steps``)."""
    import tempfile

    from gs_core.training import Callback, Trainer

    class Clock(Callback):
        def on_step_end(self, trainer, step, logs):
            if step in (skip, steps):
                torch.cuda.synchronize(device) if device.type == "cuda" else None
                marks[step] = time.perf_counter()

    out = {}
    from gs_method_agg import AGG, AGGConfig

    torch.manual_seed(0)
    cfg = AGGConfig.preset("small").with_overrides(RECIPES[recipe]).with_overrides(list(overrides))
    model = AGG(cfg).to(device)
    for stage in stages:
        marks: dict[int, float] = {}
        model.config = model.config.with_overrides(
            {"train.max_steps": steps, "train.progress": "off", "train.tensorboard": "off",
             "train.checkpoint_every": 100000, "train.device": str(device)}
        )  # fmt: skip
        module = model.training_module(stage, data_dir=data, resident=resident)
        with tempfile.TemporaryDirectory() as tmp:
            Trainer(module, f"{tmp}/run", callbacks=[Clock()]).fit()
        model.requires_grad_(True)
        dt = marks[steps] - marks[skip]
        bs = model.config.train.batch_size
        its = (steps - skip) / dt
        out[stage] = {
            "it_s": its,
            "samples_s": its * bs,
            "batch": bs,
            "gpu_busy_pct": busy.mean(marks[skip], marks[steps]) if busy else None,
            "gaussians": model.config.num_output_gaussians,
            "resident": model.config.resident_data,
        }
        print(f"{recipe} {stage}: {out[stage]}", flush=True)
    return out


def engine_main(args) -> None:
    import json

    from gs_core.data.resident import ResidentViews

    device = torch.device(args.device)
    busy = GpuBusy(device) if device.type == "cuda" else None
    resident = None
    results = {"gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    try:
        for recipe in args.recipes.split(","):
            if RECIPES[recipe].get("resident_data", True) and resident is None:
                t0 = time.perf_counter()
                resident = ResidentViews.from_dataset(
                    args.engine, "train", 128, device, points=4096, workers=16
                )
                results["resident_load_s"] = time.perf_counter() - t0
            results[recipe] = engine_throughput(
                recipe,
                args.engine,
                device,
                args.engine_steps,
                args.engine_skip,
                busy,
                resident,
                overrides=args.overrides,
            )
    finally:
        if busy is not None:
            busy.close()
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps(results, indent=1))
    print("| recipe | stage | batch | it/s | samples/s | GPU busy |")
    print("| --- | --- | --- | --- | --- | --- |")
    for recipe in args.recipes.split(","):
        for stage, r in results[recipe].items():
            b = r["gpu_busy_pct"]
            print(f"| {recipe} | {stage} | {r['batch']} | {r['it_s']:.2f} | {r['samples_s']:.0f} | "
                  f"{'n/a' if b is None else f'{b:.0f}%'} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--train-views", type=int, default=4)
    ap.add_argument("--train-resolution", type=int, default=256)
    ap.add_argument("--stages", default=None, help="dataset dir: also time the engine stages")
    ap.add_argument("--stage-preset", default="small")
    ap.add_argument("--stage-steps", type=int, default=40)
    ap.add_argument("--engine", default=None, help="dataset dir: engine throughput of recipes")
    ap.add_argument("--recipes", default="before,resident,small")
    ap.add_argument("--engine-steps", type=int, default=50)
    ap.add_argument("--engine-skip", type=int, default=10, help="steps before timing starts")
    ap.add_argument("--json", default=None)
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the AGG config")
    args = ap.parse_args()
    if args.engine:
        engine_main(args)
        return

    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = build(args.preset, device, args.overrides)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    graph_modes = [True, False] if device.type == "cuda" else [False]
    rows = inference_rows(
        model, device, dtype, [int(b) for b in args.batches.split(",")], args.iters, graph_modes
    )
    rows += train_step_rows(
        model,
        device,
        dtype,
        args.train_batch,
        args.train_views,
        args.train_resolution,
        max(2, args.iters // 4),
    )
    if args.stages:
        rows += stage_rows(args.stage_preset, args.stages, device, args.stage_steps)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"\nAGG `{args.preset}` ({n_params:.1f} M parameters, {model.config.num_output_gaussians} Gaussians), {name}, {args.dtype}\n"
    )
    print("| what | time | throughput | notes |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


if __name__ == "__main__":
    main()
