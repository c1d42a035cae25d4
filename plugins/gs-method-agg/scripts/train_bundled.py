"""Train the bundled procedural-world AGG model (``small`` preset) and the Table 2 ablations.

Runs, in one process per model, exactly what these commands run (``gs3d train`` drives the same
``Trainer`` with the module of ``AGG.training_module``)::

    gs3d data procedural --out DATA --objects N --views V --resolution 128 --points 4096 --split train
    gs3d data procedural --preset eval --out EVAL
    gs3d train --method agg --preset small --stage warmup --data DATA --out RUN/warmup train.max_steps=W
    gs3d train --method agg --preset small --stage coarse --data DATA --out RUN/coarse --init RUN/warmup/final train.max_steps=C
    gs3d train --method agg --preset small --stage sr     --data DATA --out RUN/sr     --init RUN/coarse/final train.max_steps=S
    gs3d eval --method agg --checkpoint RUN/sr/final --data EVAL --split test --frame azimuth --out REPORT

The ablation "w/o Texture Field" (``texture_field=false``) trains warmup + coarse with the steps
the full model spends on coarse + sr (equal budget); "w/o Super Resolution" is the full
model's coarse generator trained on for the same extra steps instead of the sr stage.

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


def train_stage(model, stage: str, data: Path, run: Path, steps: int, extra: dict | None = None):
    from gs_core.training import Trainer

    cfg = model.config.with_overrides({"train.max_steps": steps, "train.progress": "lines",
                                       "train.log_every": 50, "train.checkpoint_every": 100000,
                                       "train.tensorboard": "off", **(extra or {})})  # fmt: skip
    model.config = cfg
    module = model.training_module(stage, data_dir=data)
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    result = Trainer(module, run).fit()
    dt = time.perf_counter() - t0
    # The next stage starts from these weights with everything trainable again.
    model.requires_grad_(True)
    if not model.config.encoder.trainable:
        model.encoder.requires_grad_(False)
    log(f"{stage}: {steps} steps in {dt:.0f} s ({steps / dt:.2f} it/s) {result.metrics}")
    return {"stage": stage, "steps": steps, "seconds": dt, "final_metrics": result.metrics}


def evaluate(model, eval_root: Path, out: Path, label: str) -> dict:
    from gs_core.evaluation.harness import EvalConfig, evaluate
    from gs_core.evaluation.predictors import MethodPredictor

    model.eval()
    cfg = EvalConfig(protocol="gso", frame="azimuth", metrics=["psnr", "ssim"], sheets=False,
                     max_objects=int(os.environ.get("AGG_EVAL_OBJECTS", "0")) or None)
    rep = evaluate(MethodPredictor(model, label), eval_root, "test", cfg, out=out, overwrite=True,
                   device=model.device, label=label)  # fmt: skip
    model.train()
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    args = ap.parse_args()

    from gs_core.procedural import ProceduralConfig, generate
    from gs_method_agg import AGG, AGGConfig

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data, eval_root = work / "train-data", work / "procedural-eval"
    t0 = time.perf_counter()
    workers = min(16, os.cpu_count() or 1)
    tr = ProceduralConfig(objects=args.objects, views=args.views, resolution=128, points=4096, split="train")
    info = {"train_data": generate(tr, data, overwrite=True, workers=workers, progress=False)}
    if args.eval_data is not None:
        shutil.rmtree(eval_root, ignore_errors=True)
        shutil.copytree(args.eval_data, eval_root)
    else:
        ev = ProceduralConfig.preset("eval")
        info["eval_data"] = generate(ev, eval_root, overwrite=True, workers=workers, progress=False)
    log(f"data in {time.perf_counter() - t0:.0f} s: {info}")

    ablation = None
    if args.ablations:
        # The "w/o Texture Field" variant trains beside the full model on the same GPU.
        ablation = subprocess.Popen(
            [sys.executable, __file__, "--ablation-notex", str(args.out), str(work),
             str(args.warmup_steps), str(args.coarse_steps + args.sr_steps), args.preset, args.device],
        )  # fmt: skip

    torch.manual_seed(0)
    model = AGG(AGGConfig.preset(args.preset)).to(args.device)
    stages = [train_stage(model, "warmup", data, work / "full-warmup", args.warmup_steps)]
    stages.append(train_stage(model, "coarse", data, work / "full-coarse", args.coarse_steps))
    coarse_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    stages.append(train_stage(model, "sr", data, work / "full-sr", args.sr_steps))
    reports = {"full": evaluate(model, eval_root, work / "eval-full", "AGG small (full)")}
    info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    info["stages"] = stages
    # Ship: fp16 halves the bundle; loading casts back to the float32 parameters.
    final = work / "final"
    model.save_pretrained(final, overwrite=True)
    from gs_core.pretrained import load_state_dict, save_state_dict

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in load_state_dict(final).items()}
    ckpt = args.out / "ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    ckpt.mkdir()
    shutil.copy(final / "config.json", ckpt / "config.json")
    save_state_dict(state, ckpt, max_shard_bytes=15 * 1024 * 1024)
    reports["full_fp16"] = evaluate(AGG.from_pretrained(ckpt, device=args.device), eval_root, work / "eval-fp16", "bundled fp16")
    log(f"full: {json.dumps(reports['full']['mean'] if 'mean' in reports['full'] else reports['full'])[:400]}")

    if args.ablations:
        # "w/o Super Resolution": the coarse generator trained on for the sr stage's steps.
        model.load_state_dict(coarse_state)
        model.sr = None
        model.config = model.config.with_overrides({"super_resolution": False})
        ab = [train_stage(model, "coarse", data, work / "nosr-coarse", args.sr_steps)]
        reports["no_sr"] = evaluate(model, eval_root, work / "eval-nosr", "w/o Super Resolution")
        info["no_sr_stages"] = ab
        ablation.wait()
        notex = args.out / "notex.json"
        if notex.is_file():
            reports["no_texture_field"] = json.loads(notex.read_text())
    info["reports"] = reports
    (args.out / "results.json").write_text(json.dumps(info, indent=1, default=str))
    log(f"done in {time.perf_counter() - t0:.0f} s")


def ablation_notex(out: Path, work: Path, warmup: int, coarse: int, preset: str, device: str) -> None:
    from gs_method_agg import AGG, AGGConfig

    torch.manual_seed(0)
    data, eval_root = work / "train-data", work / "procedural-eval"
    model = AGG(AGGConfig.preset(preset, texture_field=False, super_resolution=False)).to(device)
    stages = [train_stage(model, "warmup", data, work / "notex-warmup", warmup)]
    stages.append(train_stage(model, "coarse", data, work / "notex-coarse", coarse))
    rep = evaluate(model, eval_root, work / "eval-notex", "w/o Texture Field")
    (out / "notex.json").write_text(json.dumps({"stages": stages, "report": rep}, default=str))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ablation-notex":
        ablation_notex(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7])
    else:
        main()
