"""Train the bundled procedural-world AGG model (``small`` preset) and the Table 2 ablations on a
two-GPU machine, in one detached run.

What it runs, in order (``--gpus 0,1``):

1. data: ``gs3d data procedural --out WORK/train-data --objects N --views 24 --resolution 128
   --set points=4096 --split train`` and ``gs3d data procedural --preset eval``; the training
   split is decoded once into ``WORK/train-data/.resident/train-128px.safetensors``, which every
   training process then loads onto its GPU (``resident_data``);
2. efficiency check: ``benchmarks/agg.py --engine`` times the old recipe (DataLoader workers)
   on the second GPU while the first times the resident recipes; the measured rates of the
   ``small`` preset turn the time budgets below into step counts (so each cosine schedule
   runs to its end);
3. training, both GPUs at once:

   - GPU 0, the bundled model: exactly what ``gs3d train --method agg --preset small --stage
     warmup|coarse|sr --data WORK/train-data --init PREVIOUS train.max_steps=STEPS`` runs,
     for ``--train-seconds`` in the proportions of ``STAGE_SHARES``; evaluated on
     ``procedural-eval`` (protocol ``gso``) after the coarse stage, halfway through ``sr`` and
     at the end (int8 weight-only, as shipped): the scaling curve;
   - GPU 1, the ablations of Table 2 at equal steps, seeds 0..S-1, one after another and
     interleaved (seed 0 of every variant first): "full", "w/o Super Resolution"
     (``super_resolution=false``: warm-up + coarse for as many steps as the full model's coarse
     + sr) and "w/o Texture Field" (``texture_field=false`` as well);
4. results: ``OUT/ckpt`` (the int8 weight-only checkpoint: shards of <= 15 MiB, one plain
   ``model.safetensors`` while it fits one), ``OUT/results.json``.

``--continue-from CKPT --prior-gpu-s S`` continues a brought-back model (the shipped one, or
an earlier run's ``OUT/ckpt``) instead of starting afresh: no warm-up, its coarse and sr stages
share ``--train-seconds`` in the proportions of ``--stage-shares``, and the scaling curve's GPU
time counts on from ``S`` seconds, so sessions add points to one curve. ``--stage-shares``
(JSON, e.g. ``'{"warmup": 0.2, "coarse": 0.45, "sr": 0.35}'``) replaces ``STAGE_SHARES``.

Progress goes to stdout; ``OUT/done`` appears at the end. Usage on the GPU machine::

    setsid nohup python3 plugins/gs-method-agg/scripts/train_bundled.py --out /tmp/agg/out \\
        > /tmp/agg/run.log 2>&1 < /dev/null &
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

from gs_method_agg.ablations import LABELS, VARIANTS, summarise_ablations

ROOT = Path(__file__).resolve().parents[3]
# Shares of the training time: the warm-up only has to place points, the coarse stage learns
# most of the shape, the super-resolution stage (which also trains the coarse generator)
# refines it.
STAGE_SHARES = {"warmup": 0.07, "coarse": 0.50, "sr": 0.43}
# Model sizes of the scaling curve (``--size``): the ``small`` preset's transformer widths
# (image encoder, geometry and texture generators) scaled, depths and Gaussians kept; the
# point-voxel super-resolution UNet is left as it is (1.5 M parameters at every size).
# Parameters: 0.5x 5.0 M, 1x 14.0 M (the bundled model), 1.5x 28.4 M, 2x 48.3 M.
MODEL_SIZES = {
    "0.5x": ["encoder.dim=96", "geometry.dim=128", "texture.dim=128", "texture.context_dim=96",
             "upsampler.context_dim=96"],
    "1x": [],
    "1.5x": ["encoder.dim=288", "encoder.num_heads=6", "geometry.dim=384", "geometry.num_heads=6",
             "texture.dim=384", "texture.num_heads=6", "texture.context_dim=288",
             "upsampler.context_dim=288"],
    "2x": ["encoder.dim=384", "encoder.num_heads=6", "geometry.dim=512", "geometry.num_heads=8",
           "texture.dim=512", "texture.num_heads=8", "texture.context_dim=384",
           "upsampler.context_dim=384"],
}  # fmt: skip


def stage_shares(args, continuing: bool | None = None) -> dict[str, float]:
    """Stages and their shares of a training time (summing to 1): ``--stage-shares`` or
    ``STAGE_SHARES``, without the warm-up for a continued model (``continuing``, default: the
    bundled model's, i.e. whether ``--continue-from`` is set)."""
    shares = dict(STAGE_SHARES)
    if args.stage_shares:
        given = json.loads(args.stage_shares)
        if set(given) != set(STAGE_SHARES) or any(v < 0 for v in given.values()):
            raise SystemExit(
                f"--stage-shares: expected non-negative shares of {sorted(STAGE_SHARES)}, "
                f"got {args.stage_shares}"
            )
        shares = given
    if continuing is None:
        continuing = bool(args.continue_from)
    if continuing:
        shares.pop("warmup")
    total = sum(shares.values())
    if total <= 0:
        raise SystemExit("--stage-shares: the shares sum to 0")
    return {st: v / total for st, v in shares.items()}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def resolution(args) -> int:
    """Training views are decoded at the preset's render resolution."""
    return preset_config(args).render_resolution


def warmup_points(args) -> int:
    """Surface points kept per training object: the preset's warm-up target size."""
    return preset_config(args).warmup_points


def overrides(args) -> list[str]:
    """The ``--size`` model size's overrides, then ``--set``'s (which win)."""
    return [*MODEL_SIZES[args.size or "1x"], *args.set]


def preset_config(args):
    """``--preset`` with the ``--size`` and ``--set key=value`` overrides."""
    from gs_method_agg import AGGConfig

    return AGGConfig.preset(args.preset).with_overrides(overrides(args))


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


# ---------------------------------------------------------------------- training helpers
def train_stage(model, stage, data, run, steps, resident, seed=0, deadline=None, callbacks=()):
    """Train ``stage`` for ``steps`` optimiser steps through the engine; past ``deadline``
    (``time.time()``) the engine stops as on SIGTERM (checkpoint, then return)."""
    from gs_core.training import Trainer

    model.config = model.config.with_overrides(
        {"train.max_steps": steps, "train.seed": seed, "train.progress": "lines",
         "train.log_every": 200, "train.checkpoint_every": 10**6, "train.tensorboard": "off"}
    )  # fmt: skip
    module = model.training_module(stage, data_dir=data, resident=resident)
    budget = None if deadline is None else max(deadline - time.time(), 1e-3)
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    result = Trainer(module, run, budget_s=budget, callbacks=list(callbacks)).fit()
    result.raise_if_signalled()
    dt = time.perf_counter() - t0
    # The next stage starts from these weights with everything trainable again.
    model.requires_grad_(True)
    cut = " (stopped at the time budget)" if result.stopped_by == "budget" else ""
    log(f"{stage}: {result.step}/{steps} steps{cut} in {dt:.0f} s ({result.step / dt:.2f} it/s)")
    return {"stage": stage, "steps": result.step, "planned_steps": steps, "seconds": dt}


def evaluate(model, eval_root: Path, out: Path, label: str) -> dict:
    from gs_core.evaluation.harness import EvalConfig
    from gs_core.evaluation.harness import evaluate as run_eval
    from gs_core.evaluation.predictors import MethodPredictor

    was_training = model.training
    model.eval()
    cfg = EvalConfig(protocol="gso", frame="azimuth", metrics=["psnr", "ssim"], sheets=False,
                     max_objects=int(os.environ.get("AGG_EVAL_OBJECTS", "0")) or None)  # fmt: skip
    t0 = time.perf_counter()
    rep = run_eval(MethodPredictor(model, label), eval_root, "test", cfg, out=out,
                   overwrite=True, device=model.device, label=label)  # fmt: skip
    model.train(was_training)
    mean = rep["mean"]
    per_cat: dict[str, list[float]] = {}
    for o in rep["objects"]:
        per_cat.setdefault(o["category"], []).append(o["scores"]["psnr"]["all"])
    summary = {
        "psnr": mean["psnr"]["all"],
        "ssim": mean["ssim"]["all"],
        "psnr_ring15": mean["psnr"].get("ring15"),
        "psnr_zero123pp": mean["psnr"].get("zero123pp"),
        "per_object_psnr": {o["object_id"]: o["scores"]["psnr"]["all"] for o in rep["objects"]},
        "per_category_psnr": {c: sum(v) / len(v) for c, v in sorted(per_cat.items())},
        "eval_seconds": time.perf_counter() - t0,
    }
    log(f"eval {label}: PSNR {summary['psnr']:.2f} SSIM {summary['ssim']:.4f}")
    return summary


def coarse_only(model):
    """The coarse generator of ``model`` alone (its 4,096 Gaussians), sharing its weights."""
    from gs_method_agg import AGG

    m = AGG(model.config.with_overrides({"super_resolution": False})).to(model.device)
    m.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("sr.")})
    return m


def save_shipped(model, directory: Path) -> Path:
    """The shipped form: int8 weight-only (per-channel fp16 scales) and fp16 for the rest, in
    <= 15 MiB shards (one plain ``model.safetensors`` while it fits); loads back into fp32.
    Measured on the 2026-11-30 bundle: the same procedural-eval PSNR to 0.002 dB as fp16, at
    half its bytes."""
    from gs_core.pretrained import load_state_dict, save_state_dict

    full = directory.with_name(directory.name + "-fp32")
    shutil.rmtree(full, ignore_errors=True)
    model.save_pretrained(full, overwrite=True)
    state = {
        k: (v.half() if v.is_floating_point() else v) for k, v in load_state_dict(full).items()
    }
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    shutil.copy(full / "config.json", directory / "config.json")
    save_state_dict(state, directory, max_shard_bytes=15 * 1024 * 1024, int8=True)
    shutil.rmtree(full)
    return directory


# ---------------------------------------------------------------------- roles
def role_main(args, plan) -> None:
    """The bundled model on this process's GPU, with its scaling-curve evaluations."""
    from gs_core.data.resident import ResidentViews
    from gs_core.training import Callback
    from gs_method_agg import AGG

    work, out = args.work, args.out
    data, eval_root = work / "train-data", work / "procedural-eval"
    resident = ResidentViews.from_dataset(data, "train", resolution(args), args.device,
                                       points=warmup_points(args))  # fmt: skip
    torch.manual_seed(0)
    if args.continue_from:
        # The checkpoint's architecture and size (main() refuses --size with it), with this
        # run's --set overrides (training settings).
        model = AGG.from_pretrained(args.continue_from, device=args.device)
        model.config = model.config.with_overrides(list(args.set))
    else:
        model = AGG(preset_config(args)).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    steps = plan["main"]
    curve: list[dict] = []
    stages: list[dict] = []
    prior_s = float(args.prior_gpu_s or 0.0)
    gpu_s = prior_s
    state = {"results": {"params": n_params, "steps": steps, "stages": stages, "curve": curve,
                         "continued_from": args.continue_from, "prior_gpu_s": prior_s,
                         "size": args.size or "1x",
                         "overrides": overrides(args)}}  # fmt: skip

    def point(label, m, gaussians, steps_done):
        ev = evaluate(m, eval_root, work / f"eval-{label}", label)
        curve.append({"label": label, "gpu_s": gpu_s, "steps": steps_done, "params": n_params,
                      "gaussians": gaussians, **ev})  # fmt: skip
        write_json(out / "main.json", state["results"])

    class HalfwayEval(Callback):
        """Evaluates once, halfway through the sr stage (a point of the scaling curve)."""

        def __init__(self, at: int, before: float, done_before: int):
            self.at, self.before, self.done_before = at, before, done_before
            self.t0 = 0.0

        def on_fit_start(self, trainer):
            self.t0 = time.perf_counter()

        def on_step_end(self, trainer, step, logs):
            nonlocal gpu_s
            if step == self.at:
                gpu_s = self.before + time.perf_counter() - self.t0
                point("sr-half", model, model.config.num_output_gaussians, self.done_before + step)
                self.t0 -= curve[-1]["eval_seconds"]  # evaluation is not training time
            return None

    done = 0
    for stage in steps:
        cbs = []
        if stage == "sr":
            cbs = [HalfwayEval(steps["sr"] // 2, gpu_s, done)]
        rec = train_stage(model, stage, data, work / f"main-{stage}", steps[stage], resident,
                          deadline=args.deadline, callbacks=cbs)  # fmt: skip
        if stage == "sr":
            rec["seconds"] -= curve[-1]["eval_seconds"] if curve[-1]["label"] == "sr-half" else 0
        stages.append(rec)
        gpu_s = prior_s + sum(s["seconds"] for s in stages)
        done += rec["steps"]
        if stage == "coarse":
            save_shipped(model, work / "ckpt-coarse")
            point("coarse", coarse_only(model), model.config.num_gaussians, done)
    ckpt = save_shipped(model, out / "ckpt")
    shipped = AGG.from_pretrained(ckpt, device=args.device)
    point("final-shipped", shipped, shipped.config.num_output_gaussians, done)
    fp32 = evaluate(model, eval_root, work / "eval-final-fp32", "final-fp32")
    state["results"]["final_fp32"] = fp32
    write_json(out / "main.json", state["results"])
    log(f"main: done, {done} steps; {gpu_s:.0f} s of GPU training in all")


def role_ablations(args, plan) -> None:
    """The Table 2 variants at equal steps, seeds 0..S-1, interleaved."""
    from gs_core.data.resident import ResidentViews
    from gs_method_agg import AGG

    work, out = args.work, args.out
    data, eval_root = work / "train-data", work / "procedural-eval"
    resident = ResidentViews.from_dataset(data, "train", resolution(args), args.device,
                                       points=warmup_points(args))  # fmt: skip
    steps = plan["ablation"]
    seeds = ablation_seeds(args)
    name = f"ablations-{args.job}.json"  # the driver merges these into ablations.json
    results: dict = {"steps": steps, "runs": []}
    for seed in seeds:
        for variant in ablation_variants(args):
            overrides = VARIANTS[variant]
            if time.time() > args.deadline - 20:
                log(f"ablations: no time left for {variant} seed {seed}")
                continue
            torch.manual_seed(seed)
            model = AGG(preset_config(args).with_overrides(overrides)).to(args.device)
            plan_v = [("warmup", steps["warmup"])]
            if variant == "full":
                plan_v += [("coarse", steps["coarse"]), ("sr", steps["sr"])]
            else:
                plan_v += [("coarse", steps["coarse"] + steps["sr"])]
            recs, coarse_end = [], None
            for st, n in plan_v:
                recs.append(train_stage(model, st, data, work / f"abl-{variant}-{seed}-{st}", n,
                                        resident, seed=seed, deadline=args.deadline - 15))  # fmt: skip
                if variant == "full" and st == "coarse":
                    # The paper's own "w/o Super Resolution" (the coarse generator, no sr stage)
                    # is this model before its sr steps: scored per seed for a paired margin.
                    coarse_end = evaluate(coarse_only(model), eval_root,
                                          work / f"eval-full-coarse-{seed}",
                                          f"full, end of coarse seed {seed}")  # fmt: skip
            label = f"{LABELS[variant]} seed {seed}"
            ev = evaluate(model, eval_root, work / f"eval-{variant}-{seed}", label)
            run = {"variant": variant, "seed": seed, "stages": recs, **ev,
                   "complete": all(r["steps"] == r["planned_steps"] for r in recs)}  # fmt: skip
            if coarse_end is not None:
                run["coarse_end"] = {k: coarse_end[k] for k in ("psnr", "ssim")}
            results["runs"].append(run)
            write_json(out / name, results)
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def ablation_variants(args) -> list[str]:
    """``--variants``: the Table 2 rows to train, in the paper's order (default: all three)."""
    text = getattr(args, "variants", None)
    if not text:
        return list(VARIANTS)
    given = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(given) - set(VARIANTS))
    if unknown or not given:
        raise SystemExit(f"--variants: expected a comma-separated subset of {list(VARIANTS)}, "
                         f"got {text!r}")  # fmt: skip
    return [v for v in VARIANTS if v in given]


def ablation_seeds(args) -> list[int]:
    """The seeds this ablation process trains: ``--seed-list`` (a driver's share), else all."""
    if args.seed_list:
        return [int(x) for x in args.seed_list.split(",")]
    return list(range(args.seeds))


def merge_ablations(out: Path) -> dict | None:
    """The ablation processes' ``ablations-<job>.json`` files as one ``OUT/ablations.json``
    (runs by seed, then variant) with its Table 2 summary; None when there are none."""
    parts = sorted(out.glob("ablations-*.json"))
    if not parts:
        return None
    merged = [json.loads(f.read_text()) for f in parts]
    runs = sorted((r for m in merged for r in m["runs"]), key=lambda r: (r["seed"], r["variant"]))
    result = {"steps": merged[0]["steps"], "runs": runs, "summary": summarise_ablations(runs)}
    write_json(out / "ablations.json", result)
    return result


# ---------------------------------------------------------------------- driver
def prepare_data(args) -> dict:
    from gs_core.data.resident import ResidentViews
    from gs_core.procedural import ProceduralConfig, generate

    work = args.work
    workers = os.cpu_count() or 1
    t0 = time.perf_counter()
    # Depth and normal maps are not trained on: not rendered, which halves the generation time.
    tr = ProceduralConfig(objects=args.objects, views=args.views, resolution=resolution(args),
                          points=warmup_points(args), split="train", seed=args.data_seed, depth=False,
                          normals=False)  # fmt: skip
    info = {"train": generate(tr, work / "train-data", overwrite=True, workers=workers,
                              progress=False)}  # fmt: skip
    ev = ProceduralConfig.preset("eval")
    info["eval"] = generate(ev, work / "procedural-eval", overwrite=True, workers=workers,
                            progress=False)  # fmt: skip
    info["generate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Decoded once here (no CUDA in this process: the pool forks); every role loads the file.
    views = ResidentViews.from_dataset(work / "train-data", "train", resolution(args), "cpu", points=warmup_points(args),
                                       workers=workers)  # fmt: skip
    info["resident_build_s"] = time.perf_counter() - t0
    info["resident_gb"] = views.rgba.numel() / 1e9
    return info


def needs_rates(args) -> bool:
    """Whether a step count is to be derived from measured rates (the efficiency check)."""
    main = not args.no_main and not args.steps
    return main or (args.seeds > 0 and not args.ablation_steps)


def plan_steps(args, bench: dict | None) -> dict:
    """Step counts: ``--steps`` / ``--ablation-steps`` where given, else from measured rates
    (``--train-seconds`` for the bundled model, and for each ablation run its share of the
    ablation GPU's time)."""
    rates = None if bench is None else {st: bench["small"][st]["it_s"] for st in STAGE_SHARES}
    if args.no_main:
        main = None
    elif args.steps:
        main = parse_steps(args)
    else:
        main = {st: max(1, int(args.train_seconds * share * rates[st]))
                for st, share in stage_shares(args).items()}  # fmt: skip
    if args.seeds == 0:
        abl = None
    elif args.ablation_steps:
        abl = parse_steps(args, "--ablation-steps", continuing=False)
    else:
        # Nine runs (three variants x seeds) plus their evaluations share the second GPU; the
        # cheaper variants leave a margin for the full one.
        runs = len(ablation_variants(args)) * args.seeds
        per_run = (args.train_seconds + 30) / runs - 12
        abl = {st: max(1, int(per_run * share * rates[st]))
               for st, share in stage_shares(args, continuing=False).items()}  # fmt: skip
    return {"rates": rates, "main": main, "ablation": abl}


def parse_steps(args, flag: str = "--steps", continuing: bool | None = None) -> dict[str, int]:
    """``--steps`` or ``--ablation-steps`` (``flag``): step counts per stage, in the stages'
    order (a continued model has no warm-up; the ablations always start afresh)."""
    text = args.steps if flag == "--steps" else args.ablation_steps
    want = list(stage_shares(args, continuing))
    try:
        given = json.loads(text)
        ok = isinstance(given, dict) and set(given) == set(want)
        ok = ok and all(isinstance(v, int) and v > 0 for v in given.values())
    except json.JSONDecodeError:
        ok = False
    if not ok:
        raise SystemExit(f"{flag}: expected positive step counts of {want} as JSON, got {text}")
    return {st: given[st] for st in want}


def link_data(source: Path, work: Path) -> None:
    """``--data-from``: this run's ``train-data`` and ``procedural-eval`` are links to another
    work directory's (several model sizes train at once on one decoded copy)."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("train-data", "procedural-eval"):
        src, dst = Path(source).resolve() / name, work / name
        if not src.is_dir():
            raise SystemExit(f"--data-from {source}: {name}/ is missing; make it with --data-only")
        if dst.is_symlink() or dst.exists():
            if dst.resolve() == src:
                continue
            raise SystemExit(f"--data-from: {dst} exists and is not a link to {src}")
        dst.symlink_to(src, target_is_directory=True)


def spawn(args, role: str, gpu: int, extra=()) -> subprocess.Popen:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)}
    cmd = [sys.executable, __file__, "--role", role, "--out", str(args.out),
           "--work", str(args.work), "--preset", args.preset, "--seeds", str(args.seeds),
           "--deadline", str(args.deadline), "--device", args.device, *extra]  # fmt: skip
    for item in args.set:
        cmd += ["--set", item]
    if args.size:
        cmd += ["--size", args.size]
    if args.variants:
        cmd += ["--variants", args.variants]
    if args.continue_from:
        cmd += ["--continue-from", str(args.continue_from), "--prior-gpu-s", str(args.prior_gpu_s)]
    return subprocess.Popen(cmd, env=env)


def driver(args) -> None:
    from gs_core.io.atomic import fresh_output_dir

    t_start = time.time()
    fresh_output_dir(args.out, args.overwrite)
    args.work.mkdir(parents=True, exist_ok=True)
    gpus = [int(g) for g in args.gpus.split(",")]
    cuda = args.device == "cuda"
    smi = warm = None
    if cuda:
        smi = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=timestamp,index,utilization.gpu,memory.used",
             "--format=csv,noheader", "-l", "5"],
            stdout=(args.out / "gpu-busy.csv").open("w"), stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # gsplat JIT-compiles its CUDA kernels (about a minute) while the data is generated.
        warm = subprocess.Popen(
        [sys.executable, "-c", "import torch; from gs_core import Cameras, Gaussians, render;"
         "g = Gaussians.from_colors(torch.zeros(1, 8, 3, device='cuda'), "
         "torch.rand(1, 8, 3, device='cuda'), 0.05);"
         "render(g, Cameras.orbit([0.0], 0.0, 1.5, width=32, height=32), background=1.0,"
         " backend='gsplat'); print('gsplat ready', flush=True)"],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": str(gpus[0])},
        )  # fmt: skip
    from gs_core.data.resident import cache_path

    if args.data_from:
        link_data(args.data_from, args.work)
    cached = cache_path(args.work / "train-data", "train", resolution(args))
    if (
        (args.reuse_data or args.data_from)
        and cached.is_file()
        and (args.work / "procedural-eval").is_dir()
    ):
        info = {"data": {"reused": str(args.data_from or args.work)}}
    elif args.data_from:
        raise SystemExit(f"--data-from {args.data_from}: no decoded training split ({cached.name})"
                         " and procedural-eval there; make it with --data-only first")  # fmt: skip
    else:
        info = {"data": prepare_data(args)}
    log(f"data: {json.dumps(info['data'])[:300]}")
    if warm is not None and warm.wait() != 0:
        raise SystemExit("gsplat could not be built")
    if args.data_only:
        write_json(args.out / "results.json", info)
        (args.out / "done").write_text("ok\n")
        log("data ready (--data-only)")
        return
    info["efficiency"] = bench = efficiency_check(args, gpus) if needs_rates(args) else None
    plan = plan_steps(args, bench)
    info["plan"] = plan
    write_json(args.out / "results.json", info)
    write_json(args.work / "plan.json", plan)
    log(f"plan: {json.dumps(plan)}")
    args.deadline = time.time() + args.train_seconds + args.eval_margin
    roles = [] if args.no_main else [spawn(args, "main", gpus[0])]
    # The ablations get the GPUs after the bundled model's (all of them without it), their
    # seeds dealt round-robin to --ablation-jobs processes.
    abl_gpus = gpus if args.no_main else gpus[1:]
    jobs = max(1, min(args.ablation_jobs, args.seeds))
    if abl_gpus and args.seeds > 0:
        for k in range(jobs):
            share = ",".join(str(x) for x in range(args.seeds) if x % jobs == k)
            roles.append(spawn(args, "ablations", abl_gpus[k % len(abl_gpus)],
                               ["--job", str(k), "--seed-list", share]))  # fmt: skip
    codes = [p.wait() for p in roles]
    if smi is not None:
        smi.terminate()
    if (args.out / "main.json").is_file():
        info["main"] = json.loads((args.out / "main.json").read_text())
    merged = merge_ablations(args.out)
    if merged is not None:
        info["ablations"] = merged
    info["wall_s"] = time.time() - t_start
    info["exit_codes"] = codes
    write_json(args.out / "results.json", info)
    (args.out / "done").write_text("ok\n" if not any(codes) else f"exit codes {codes}\n")
    log(f"all done in {info['wall_s']:.0f} s, exit codes {codes}")


def efficiency_check(args, gpus: list[int]) -> dict:
    """Old recipe on the last GPU, resident recipes on the first, at the same time."""
    if args.bench_json is not None:
        return json.loads(args.bench_json.read_text())
    bench_py = ROOT / "benchmarks" / "agg.py"
    data = args.work / "train-data"
    benches = {}
    procs = []
    for recipes, gpu in (("before", gpus[-1]), ("resident,small", gpus[0])):
        path = args.work / f"bench-{recipes.split(',')[0]}.json"
        benches[recipes] = path
        procs.append(subprocess.Popen(
            [sys.executable, str(bench_py), "--engine", str(data), "--recipes", recipes,
             "--engine-steps", str(args.bench_steps), "--json", str(path),
             "--device", args.device],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)},
        ))  # fmt: skip
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("efficiency check failed")
    bench = {}
    for path in benches.values():
        bench.update(json.loads(path.read_text()))
    return bench


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/agg-work"))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--objects", type=int, default=4000)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--gpus", default="0,1")
    ap.add_argument("--train-seconds", type=float, default=540.0,
                    help="training time of the bundled model (the ablations share the same "
                    "window on the second GPU)")  # fmt: skip
    ap.add_argument("--eval-margin", type=float, default=90.0,
                    help="seconds past the training time for evaluations and packaging")  # fmt: skip
    ap.add_argument("--seeds", type=int, default=3, help="ablation seeds (0: no ablations)")
    ap.add_argument("--bench-steps", type=int, default=50)
    ap.add_argument("--device", default="cuda", help="cuda (each role on its GPU) or cpu")
    ap.add_argument("--bench-json", type=Path, default=None,
                    help="rates of an earlier efficiency check instead of a new one")  # fmt: skip
    ap.add_argument("--reuse-data", action="store_true",
                    help="keep the data of an earlier run in --work (a restart)")  # fmt: skip
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override of the preset (repeatable)")  # fmt: skip
    ap.add_argument("--continue-from", default=None, metavar="CKPT",
                    help="continue this AGG checkpoint (no warm-up) instead of a new model")  # fmt: skip
    ap.add_argument("--prior-gpu-s", type=float, default=0.0,
                    help="GPU seconds the --continue-from model has trained (scaling curve)")  # fmt: skip
    ap.add_argument("--stage-shares", default=None, metavar="JSON",
                    help="shares of --train-seconds per stage (default STAGE_SHARES)")  # fmt: skip
    ap.add_argument("--size", choices=sorted(MODEL_SIZES), default=None,
                    help="model size of the scaling curve (MODEL_SIZES; default the preset's, 1x)")  # fmt: skip
    ap.add_argument("--steps", default=None, metavar="JSON",
                    help="step counts of the bundled model per stage instead of --train-seconds' "
                    "(the shipped recipe: '{\"warmup\": 370, \"coarse\": 2718, \"sr\": 947}'); "
                    "--train-seconds then only caps the training time")  # fmt: skip
    ap.add_argument("--ablation-steps", default=None, metavar="JSON",
                    help="step counts of each ablation run per stage (warmup, coarse, sr of the "
                    "full model; the variants without super-resolution train coarse + sr "
                    "steps as one coarse stage) instead of a share of --train-seconds")  # fmt: skip
    ap.add_argument("--ablation-jobs", type=int, default=1,
                    help="ablation processes at once, the seeds dealt among them (they share the "
                    "ablation GPUs: one H200 holds three)")  # fmt: skip
    ap.add_argument("--variants", default=None, metavar="LIST",
                    help="the Table 2 rows to train, comma-separated among full, nosr, notex "
                    "(default: all; the full model's runs also score its coarse stage, the "
                    "paper's own 'w/o Super Resolution', for a paired gain)")  # fmt: skip
    ap.add_argument("--no-main", action="store_true",
                    help="train only the ablations (on every --gpus GPU), not the bundled model")  # fmt: skip
    ap.add_argument("--data-only", action="store_true",
                    help="generate and decode the data (and build gsplat), then stop")  # fmt: skip
    ap.add_argument("--data-from", type=Path, default=None, metavar="WORK",
                    help="use the data another run made in WORK (--data-only) instead of new data")  # fmt: skip
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier run's --out")
    ap.add_argument("--role", choices=["main", "ablations"], default=None)
    ap.add_argument("--deadline", type=float, default=None)
    ap.add_argument("--job", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--seed-list", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.size and args.continue_from:
        raise SystemExit("--size: a continued model keeps its checkpoint's size; drop --size")
    ablation_variants(args)  # a bad --variants stops here, before any data is made
    if args.role is None:
        driver(args)
        return
    plan = json.loads((args.work / "plan.json").read_text())
    {"main": role_main, "ablations": role_ablations}[args.role](args, plan)


if __name__ == "__main__":
    main()
