"""Does a useful teacher start another prior's teacher better than random weights? A CPU check
at equal steps on held-out objects: Zero123++ from Zero123 or ImageDream, Zero123 from
ImageDream (``--target``).

Two teachers of the target prior (the real classes, the VAE of the packed source teacher) are
written from the same seed; one is then warm-started from the source
(:func:`gs_priors.teachers.warm_start.warm_start`). Both train on the same batches, one step each
in turn, and every ``--eval-every`` steps their EMA weights are scored on two fixed batches drawn
from ``eval-hard`` objects (never trained on) by the prior's own training loss (the MSE of its
prediction: v for Zero123++, the noise for Zero123) at fixed timesteps and noise, per timestep:
the high-noise rows are where only the condition tells the model what the unseen sides look
like. It measures the start of training only (the GPU runs take tens of thousands of steps at
batch 192), so it says whether the warm start is a head start, not where either run ends.

    python3 packages/gs-priors/scripts/warm_start_toy.py --source .teacher/zero123.safetensors \\
        --work /tmp/ws --steps 300 --eval-every 50 --out warm-start.json
    python3 packages/gs-priors/scripts/warm_start_toy.py --target zero123 --preset compact \\
        --source packages/gs-priors/teachers/imagedream.safetensors --work /tmp/wz --steps 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

TIMESTEPS = (100, 300, 500, 700, 900)
# Views per training object: Zero123's as in the GPU runs; one Zero123++ set of 7 (they hold two).
TRAIN_VIEWS = {"zero123": 12, "zero123plus": 7}
# Also scored with the null condition: what the input view is worth where the noise hides most.
NULL_TIMESTEPS = (700, 900)


@contextlib.contextmanager
def ema_weights(trainer):
    """The trainer's EMA weights in its modules (what a checkpoint saves) while inside."""
    saved = [p.detach().clone() for p in trainer.params]
    with torch.no_grad():
        for p, e in zip(trainer.params, trainer.ema, strict=True):
            p.copy_(e)
    try:
        with trainer.evaluating():
            yield
    finally:
        with torch.no_grad():
            for p, s in zip(trainer.params, saved, strict=True):
                p.copy_(s)


@torch.no_grad()
def held_out_loss(trainer, name: str, batches: list, cache: dict) -> dict[str, float]:
    """The MSE of ``trainer``'s EMA weights (prior ``name``'s own prediction) on ``batches``
    with their fixed noise, per timestep of :data:`TIMESTEPS` and their mean, and
    ``null_<t>`` with the null condition at :data:`NULL_TIMESTEPS` (its excess over ``<t>`` is
    the condition's use)."""
    from gs_priors.forward_process import add_noise, prediction_target
    from gs_priors.teachers.training import conditioned_batch

    prior = trainer.prior
    sums = dict.fromkeys(TIMESTEPS, 0.0)
    nulls = dict.fromkeys(NULL_TIMESTEPS, 0.0)
    with ema_weights(trainer):
        for batch, noise in batches:
            x0, cond, null, _ = conditioned_batch(prior, name, batch, cache)
            for t in TIMESTEPS:
                tt = torch.full((x0.shape[0],), t, device=x0.device)
                xt = add_noise(x0, noise, tt, prior.alphas_cumprod)
                target = prediction_target(
                    x0, noise, tt, prior.alphas_cumprod, prior.prediction_type
                )
                for c, acc in ((cond, sums), (null, nulls)):
                    if acc is nulls and t not in nulls:
                        continue
                    out = prior.model_output(xt, tt, c).float()
                    acc[t] += float((out - target).pow(2).mean()) / len(batches)
    report = {str(t): round(v, 5) for t, v in sums.items()}
    report["mean"] = round(sum(sums.values()) / len(sums), 5)
    report |= {f"null_{t}": round(v, 5) for t, v in nulls.items()}
    return report


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--source",
        type=Path,
        required=True,
        help="a Zero123 or ImageDream teacher (packed file or directory)",
    )
    p.add_argument(
        "--target",
        choices=("zero123plus", "zero123"),
        default="zero123plus",
        help="the prior of the two teachers compared",
    )
    p.add_argument(
        "--preset",
        choices=("procedural", "compact", "tiny"),
        default="procedural",
        help="the teachers' size: the GPU runs' (the target's preset), compact-<target> (the "
        "tracked ImageDream's widths) or the CPU tests' (tiny-<target>)",
    )
    p.add_argument("--work", type=Path, required=True)
    p.add_argument(
        "--out", type=Path, default=None, help="the results JSON (default WORK/warm-start.json)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier --out")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--batch", type=int, default=8, help="sets per step (the GPU runs: 192)")
    p.add_argument("--objects", type=int, default=300, help="training objects")
    p.add_argument("--eval-objects", type=int, default=16, help="held-out eval-hard objects")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TeacherConfig field of both teachers (repeatable); warmup_steps defaults to 50 "
        "here, the GPU runs' 200 being most of a CPU run",
    )
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from gs_core.errors import GS3DError
    from gs_core.io.atomic import atomic_write_text, check_overwrite

    out = a.out or a.work / "warm-start.json"
    try:  # before minutes of training
        check_overwrite(out, a.overwrite, directory=False)
    except GS3DError as e:
        p.error(f"--out: {e}")

    from gs_core.procedural.generator import ProceduralConfig, generate
    from gs_priors.teachers import (
        LAYOUTS,
        TeacherConfig,
        TeacherTrainer,
        ViewBank,
        load_teacher,
        write_teacher,
    )
    from gs_priors.teachers.data import BATCHES, TRAIN_SEEDS
    from gs_priors.teachers.packing import is_packed_teacher, unpacked_teacher
    from gs_priors.teachers.training import latent_cache
    from gs_priors.teachers.warm_start import summarise, warm_start

    target = a.target
    preset = target if a.preset == "procedural" else f"{a.preset}-{target}"
    cfg = TeacherConfig.preset(preset).with_overrides(
        [f"batch_size={a.batch}", "warmup_steps=50", *a.set]
    )
    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    common = {"resolution": cfg.resolution, "camera_layout": LAYOUTS[target], "points": 0,
              "depth": False, "normals": False}  # fmt: skip
    # The training objects of the GPU runs (their first ones: same seed and split; Zero123's
    # pairs are drawn from 12 random views per object, Zero123++'s sets are 7 views).
    views = TRAIN_VIEWS[target]
    train_cfg = ProceduralConfig(objects=a.objects, views=views, seed=TRAIN_SEEDS[target],
                                 split="train", asymmetric=True, **common)  # fmt: skip
    ev = ProceduralConfig.preset("eval-hard")
    eval_cfg = ProceduralConfig.model_validate(
        ev.model_copy(update={**common, "objects": a.eval_objects, "views": views}).model_dump()
    )
    t0 = time.perf_counter()
    for name, c in (("train", train_cfg), ("eval", eval_cfg)):
        if not (work / name / "dataset.json").exists():
            generate(c, work / name, workers=a.threads, progress=False)
    print(f"data {time.perf_counter() - t0:.0f} s", flush=True)
    source = unpacked_teacher(a.source) if is_packed_teacher(a.source) else a.source
    trainers, reports = {}, {}
    bank = ViewBank.load(work / "train", cfg.resolution, "cpu")
    eval_bank = ViewBank.load(work / "eval", cfg.resolution, "cpu")
    for run in ("scratch", "warm"):
        directory = write_teacher(cfg, work / run, source / "vae", seed=0)
        if run == "warm":
            reports[run] = summarise(warm_start(directory, a.source))
        # Both teachers have the source's VAE, so the latents are the same: encoded once.
        trainers[run] = TeacherTrainer(
            load_teacher(directory), cfg, bank, seed=0, cache_latents=run == "scratch"
        )
        if run == "warm":
            trainers[run].cache = trainers["scratch"].cache
    eval_cache = latent_cache(trainers["scratch"].prior, target, eval_bank)
    # Two fixed held-out batches (drawn from the eval objects) with fixed noise: every
    # evaluation scores the same rows.
    g = torch.Generator().manual_seed(7)
    shape = eval_cache["grids" if target == "zero123plus" else "views"].shape[-3:]
    batches = []
    for _ in range(2):
        batch = BATCHES[target](eval_bank, a.eval_objects, g)
        batches.append((batch, torch.randn(batch.obj.shape[0], *shape, generator=g)))
    curves: dict[str, list] = {run: [] for run in trainers}
    seconds = dict.fromkeys(trainers, 0.0)
    for step in range(a.steps + 1):
        if step % a.eval_every == 0 or step == a.steps:
            for run, tr in trainers.items():
                row = {"step": step, **held_out_loss(tr, target, batches, eval_cache)}
                curves[run].append(row)
                print(json.dumps({"run": run, **row}), flush=True)
        if step == a.steps:
            break
        for run, tr in trainers.items():
            # The same batches for both: each trainer's generator starts from the same seed.
            s = time.perf_counter()
            tr.step()
            seconds[run] += time.perf_counter() - s
    result = {
        "target": target,
        "command": "warm_start_toy.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": cfg.model_dump(),
        "steps": a.steps,
        "train_objects": a.objects,
        "eval_objects": a.eval_objects,
        "timesteps": list(TIMESTEPS),
        "warm_start": reports.get("warm"),
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "curves": curves,
    }
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
