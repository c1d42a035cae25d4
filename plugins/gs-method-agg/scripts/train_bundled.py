"""Train the bundled procedural-world AGG model (``small`` preset) and the Table 2 ablations.

Runs, in one process per model, exactly what these commands run (``gs3d train`` drives the same
``Trainer`` with the module of ``AGG.training_module``)::

    gs3d data procedural --out DATA --objects N --views V --resolution 128 --set points=4096 --split train
    gs3d data procedural --preset eval --out EVAL
    gs3d train --method agg --preset small --stage warmup --data DATA --out RUN/warmup train.max_steps=W
    gs3d train --method agg --preset small --stage coarse --data DATA --out RUN/coarse --init RUN/warmup/final train.max_steps=C
    gs3d train --method agg --preset small --stage sr     --data DATA --out RUN/sr     --init RUN/coarse/final train.max_steps=S
    gs3d eval --method agg --checkpoint RUN/sr/final --data EVAL --split test --frame azimuth --out REPORT

The ablations of Table 2 train beside it with the same number of optimiser steps: "w/o Super
Resolution" (``super_resolution=false``) and "w/o Texture Field" (``texture_field=false``, the
geometry predictor decodes every attribute) each run warmup + coarse for the steps the full
model spends on coarse + sr.

Usage (GPU machine): ``python3 plugins/gs-method-agg/scripts/train_bundled.py --out $OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_stage(
    model, stage: str, data: Path, run: Path, steps: int, deadline: float | None = None
):
    """Train ``stage`` for ``steps`` steps; past ``deadline`` (``time.time()``) the engine stops
    gracefully, as Ctrl-C / SIGTERM stops ``gs3d train`` (checkpoint, then return)."""
    from gs_core.training import Trainer

    cfg = model.config.with_overrides({"train.max_steps": steps, "train.progress": "lines",
                                       "train.log_every": 50, "train.checkpoint_every": 100000,
                                       "train.tensorboard": "off"})  # fmt: skip
    model.config = cfg
    module = model.training_module(stage, data_dir=data)
    # A deadline already past still trains one step, as the stop is checked after each step.
    budget = None if deadline is None else max(deadline - time.time(), 1e-3)
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    result = Trainer(module, run, budget_s=budget).fit()
    dt = time.perf_counter() - t0
    # The next stage starts from these weights with everything trainable again.
    model.requires_grad_(True)
    if not model.config.encoder.trainable:
        model.encoder.requires_grad_(False)
    done = result.step
    cut = " (stopped at the time budget)" if result.stopped_by == "budget" else ""
    log(f"{stage}: {done}/{steps} steps{cut} in {dt:.0f} s ({done / dt:.2f} it/s) {result.metrics}")
    return {
        "stage": stage,
        "steps": done,
        "planned_steps": steps,
        "seconds": dt,
        "final_metrics": result.metrics,
    }


def evaluate(model, eval_root: Path, out: Path, label: str) -> dict:
    from gs_core.evaluation.harness import EvalConfig, evaluate
    from gs_core.evaluation.predictors import MethodPredictor

    model.eval()
    cfg = EvalConfig(
        protocol="gso",
        frame="azimuth",
        metrics=["psnr", "ssim"],
        sheets=False,
        max_objects=int(os.environ.get("AGG_EVAL_OBJECTS", "0")) or None,
    )
    rep = evaluate(MethodPredictor(model, label), eval_root, "test", cfg, out=out, overwrite=True,
                   device=model.device, label=label)  # fmt: skip
    model.train()
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/agg-work"))
    ap.add_argument("--objects", type=int, default=960)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--warmup-steps", type=int, default=300)
    ap.add_argument("--coarse-steps", type=int, default=1500)
    ap.add_argument("--sr-steps", type=int, default=700)
    ap.add_argument("--ablations", action="store_true")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--eval-data", type=Path, default=None, help="an existing procedural-eval")
    ap.add_argument("--device", default="cuda")
    ap.add_argument(
        "--budget-s", type=float, default=None, help="wall-time budget of the whole run"
    )
    args = ap.parse_args()

    from gs_core.procedural import ProceduralConfig, generate
    from gs_method_agg import AGG, AGGConfig

    t_start = time.time()
    end = t_start + args.budget_s if args.budget_s else None
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data, eval_root = work / "train-data", work / "procedural-eval"
    t0 = time.perf_counter()
    workers = min(16, os.cpu_count() or 1)
    tr = ProceduralConfig(
        objects=args.objects, views=args.views, resolution=128, points=4096, split="train"
    )
    info = {"train_data": generate(tr, data, overwrite=True, workers=workers, progress=False)}
    if args.eval_data is not None:
        shutil.rmtree(eval_root, ignore_errors=True)
        shutil.copytree(args.eval_data, eval_root)
    else:
        ev = ProceduralConfig.preset("eval")
        info["eval_data"] = generate(ev, eval_root, overwrite=True, workers=workers, progress=False)
    log(f"data in {time.perf_counter() - t0:.0f} s: {info}")

    if args.device.startswith("cuda"):
        # Build gsplat's CUDA extension here, once: the ablation processes started below would
        # otherwise JIT-compile it concurrently into the same cache and break each other's build.
        from gs_core import Cameras, Gaussians, render

        g = Gaussians.from_colors(
            torch.zeros(1, 8, 3, device=args.device), torch.rand(1, 8, 3, device=args.device), 0.05
        )
        render(g, Cameras.orbit([0.0], 0.0, 1.5, width=32, height=32), background=1.0)

    procs = []
    if args.ablations:
        # The ablations train beside the full model on the same GPU, with the same number of
        # optimiser steps in total (warm-up + coarse [+ sr]).
        total = str(args.coarse_steps + args.sr_steps)
        for variant in ("notex", "nosr"):
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--ablation", variant, str(args.out), str(work),
                 str(args.warmup_steps), total, args.preset, args.device, str(end or 0)],
            ))  # fmt: skip

    # A safety net only: the step counts are chosen to fit, so that every model gets exactly
    # its planned steps (the equal budget of the ablations). ~45 s are left for evaluation.
    deadline = None if end is None else end - 45

    torch.manual_seed(0)
    model = AGG(AGGConfig.preset(args.preset)).to(args.device)
    stages = [
        train_stage(model, "warmup", data, work / "full-warmup", args.warmup_steps, deadline),
        train_stage(model, "coarse", data, work / "full-coarse", args.coarse_steps, deadline),
        train_stage(model, "sr", data, work / "full-sr", args.sr_steps, deadline),
    ]
    info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    info["stages"] = stages
    # Ship: fp16 halves the bundle; loading casts back to the float32 parameters.
    final = work / "final"
    model.save_pretrained(final, overwrite=True)
    from gs_core.pretrained import load_state_dict, save_state_dict

    state = {
        k: (v.half() if v.is_floating_point() else v) for k, v in load_state_dict(final).items()
    }
    ckpt = args.out / "ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    ckpt.mkdir()
    shutil.copy(final / "config.json", ckpt / "config.json")
    save_state_dict(state, ckpt, max_shard_bytes=15 * 1024 * 1024)
    reports = {
        "full_fp16": evaluate(
            AGG.from_pretrained(ckpt, device=args.device),
            eval_root,
            work / "eval-fp16",
            "bundled fp16",
        )
    }
    log(f"full (fp16): {json.dumps(reports['full_fp16']['mean'])[:400]}")
    info["reports"] = reports
    (args.out / "results.json").write_text(json.dumps(info, indent=1, default=str))
    for p in procs:
        p.wait()
    for variant in ("notex", "nosr"):
        f = args.out / f"{variant}.json"
        if f.is_file():
            reports[variant] = json.loads(f.read_text())
    (args.out / "results.json").write_text(json.dumps(info, indent=1, default=str))
    log(f"done in {time.time() - t_start:.0f} s")


def ablation(
    variant: str,
    out: Path,
    work: Path,
    warmup: int,
    coarse: int,
    preset: str,
    device: str,
    end: float,
) -> None:
    """'notex': "w/o Texture Field"; 'nosr': "w/o Super Resolution" (Table 2)."""
    from gs_method_agg import AGG, AGGConfig

    torch.manual_seed(0)
    data, eval_root = work / "train-data", work / "procedural-eval"
    overrides = {"super_resolution": False}
    if variant == "notex":
        overrides["texture_field"] = False
    model = AGG(AGGConfig.preset(preset, **overrides)).to(device)
    deadline = end - 30 if end else None  # a safety net, as for the full model
    stages = [
        train_stage(model, "warmup", data, work / f"{variant}-warmup", warmup, deadline),
        train_stage(model, "coarse", data, work / f"{variant}-coarse", coarse, deadline),
    ]
    label = {"notex": "w/o Texture Field", "nosr": "w/o Super Resolution"}[variant]
    rep = evaluate(model, eval_root, work / f"eval-{variant}", label)
    (out / f"{variant}.json").write_text(
        json.dumps({"stages": stages, "mean": rep["mean"]}, default=str)
    )
    log(f"{label}: {json.dumps(rep['mean'])[:300]}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ablation":
        a = sys.argv[2:]
        ablation(a[0], Path(a[1]), Path(a[2]), int(a[3]), int(a[4]), a[5], a[6], float(a[7]))
    else:
        main()
