"""GECO's offline proof on the procedural world, in one command (the ``small`` preset):

1. data: ``camera_layout=zero123pp`` training sets and ``procedural-eval`` (generated into
   ``--out/data`` unless given);
2. R: a small LGM trained on the teacher's view layout (ground-truth sets; R's pretraining);
3. stage I: G (initialised from the teacher) against a full-U-Net student by VSD, condition
   images only;
4. pseudo ground truth: 75-step deterministic teacher samples -> R -> random-view renders;
5. stage II: G and R jointly on the pseudo ground truth;
6. evaluation on procedural-eval (``gso`` protocol, PSNR / SSIM, azimuth frame): one-step
   teacher + LGM, 75-step teacher + LGM (Table 1), GECO without stage II, GECO (Table 2); and
   the six-view quality of G and of the 75-step teacher against the ground-truth Zero123++
   views;
7. ``--out/results.json`` and the trained model as fp16 safetensors shards of at most 16 MiB
   (``--out/checkpoint``).

    python plugins/gs-method-geco/scripts/train_small.py TEACHER_DIR --out runs/geco-small \\
        --view-size 64

Without a trained teacher (none persists between GPU leases), ``--train-teacher SECONDS`` trains
the procedural Zero123++ teacher first (``packages/gs-priors/scripts/train_procedural_teachers.py``
in a child process, log in ``--out/teacher/teacher.log``) while this process makes the data and
builds gsplat, then runs GECO on it: the whole offline proof in one command on one GPU.

``--preset tiny`` runs every step in seconds on a CPU (tests/test_train_small.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gs_core.errors import GS3DError
from gs_core.training.stage_budgets import stage_budget_arg

SHARD_BYTES = 16 * 1024**2
# The trained stages, in order; ``--budget-s`` caps each one's wall time.
STAGES = ("reconstructor", "stage1", "stage2")
# The teacher's trainer (``--train-teacher``): a repository script, beside this one.
TEACHER_SCRIPT = (
    Path(__file__).resolve().parents[3]
    / "packages"
    / "gs-priors"
    / "scripts"
    / "train_procedural_teachers.py"
)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "teacher",
        nargs="?",
        help="the procedural Zero123++ teacher: a diffusers directory, or the packed file "
        "(zero123plus.safetensors) a teacher run wrote; or --train-teacher",
    )
    ap.add_argument(
        "--train-teacher",
        type=float,
        default=None,
        metavar="SECONDS",
        help="train the procedural Zero123++ teacher for SECONDS first, beside the data and the "
        "gsplat build (one H200: 450 s are about 1,980 steps)",
    )
    ap.add_argument(
        "--teacher-vae-seconds",
        type=float,
        default=150.0,
        help="with --train-teacher: seconds of the teacher's VAE, trained before it",
    )
    ap.add_argument(
        "--teacher-preset",
        default="procedural",
        choices=["procedural", "compact"],
        help="with --train-teacher: the teacher's size (the teacher script's --preset); compact "
        "has the widths of the compact ImageDream tracked in the repository, so every U-Net and "
        "CLIP tower tensor can start from it (--teacher-init-from)",
    )
    ap.add_argument(
        "--teacher-init-from",
        type=Path,
        default=None,
        metavar="PACK",
        help="with --train-teacher: a packed teacher whose weights start the new one (the "
        "teacher script's --init-from), e.g. packages/gs-priors/teachers/imagedream.safetensors "
        "with --teacher-preset compact",
    )
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--preset", default="small", choices=["small", "tiny"])
    ap.add_argument("--view-size", type=int, default=64, help="the teacher's view size")
    ap.add_argument("--data", type=Path, help="a camera_layout=zero123pp dataset (train split)")
    ap.add_argument(
        "--eval-data", type=Path, help="procedural-eval (gs3d data procedural --preset eval)"
    )
    ap.add_argument(
        "--objects", type=int, default=400, help="training objects when generating data"
    )
    ap.add_argument("--lgm-steps", type=int, default=3000, help="R's pretraining steps")
    ap.add_argument("--lgm-batch", type=int, default=16)
    ap.add_argument("--eval-objects", type=int, default=None, help="limit evaluated objects")
    ap.add_argument(
        "--pseudo-batch",
        type=int,
        default=64,
        help="condition images per teacher sampling call when making the pseudo ground truth "
        "(speed only: at 8 per call, 400 objects took 62 s for 20 DDIM steps on one H200)",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument(
        "--budget-s",
        type=stage_budget_arg(STAGES),
        default={},
        help="wall-clock seconds per trained stage, one number for all or JSON keyed by "
        f"{', '.join(STAGES)}; a stage stopped by it goes on with the steps it reached",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a GECOConfig field, dotted, e.g. vsd_iterations=2 (repeatable; a short smoke run)",
    )
    args = ap.parse_args(argv)
    if (args.teacher is None) == (args.train_teacher is None):
        ap.error("expected a teacher directory or --train-teacher SECONDS (one of the two)")
    if args.train_teacher is not None and args.train_teacher <= 0:
        ap.error(
            f"--train-teacher: expected a positive number of seconds, got {args.train_teacher}"
        )
    asked = [
        name
        for name, given in (
            ("--teacher-preset", args.teacher_preset != "procedural"),
            ("--teacher-init-from", args.teacher_init_from is not None),
        )
        if given
    ]
    if asked and args.train_teacher is None:
        ap.error(f"{', '.join(asked)}: only with --train-teacher SECONDS (the teacher it trains)")
    if args.teacher_init_from is not None and not args.teacher_init_from.is_file():
        ap.error(f"--teacher-init-from: {args.teacher_init_from} is not a file (a packed teacher)")
    if args.pseudo_batch < 1:
        ap.error(f"--pseudo-batch: expected a positive number of images, got {args.pseudo_batch}")
    return args


# ---------------------------------------------------------------------------- data
def make_data(args) -> tuple[Path, Path]:
    from gs_core.procedural import ProceduralConfig, generate

    tiny = args.preset == "tiny"
    train = args.data
    if train is None:
        train = args.out / "data" / "train"
        if tiny:
            cfg = ProceduralConfig.preset("tiny", camera_layout="zero123pp", views=7, split="train")
        else:
            res = max(64, args.view_size)
            cfg = ProceduralConfig.preset(
                "small",
                objects=args.objects,
                views=28,
                resolution=res,
                camera_layout="zero123pp",
                split="train",
            )
        generate(
            cfg, train, overwrite=args.overwrite, workers=0 if tiny else None, progress=not tiny
        )
    evald = args.eval_data
    if evald is None:
        evald = args.out / "data" / "procedural-eval"
        if tiny:
            cfg = ProceduralConfig.preset(
                "tiny", objects=2, views=1, camera_layout="protocol", split="test"
            )
        else:
            cfg = ProceduralConfig.preset("eval")
        generate(
            cfg, evald, overwrite=args.overwrite, workers=0 if tiny else None, progress=not tiny
        )
    return train, evald


# ---------------------------------------------------------------------------- teacher
def teacher_command(args) -> list[str]:
    """The child process that trains the procedural Zero123++ teacher into
    ``--out/teacher/work/zero123plus/fp16``: its VAE, then the teacher, then its usefulness
    checks at one seed (their full table is gs-priors' business; GECO scores the teacher again
    through its own Table 1 row)."""
    device = torch.device(args.device)
    gpus = "cpu" if device.type == "cpu" else str(device.index or 0)
    root = args.out / "teacher"
    return [
        sys.executable,
        str(TEACHER_SCRIPT),
        "--work",
        str(root / "work"),
        "--out",
        str(root / "out"),
        "--gpus",
        gpus,
        "--priors",
        "zero123plus",
        "--vae-seconds",
        str(args.teacher_vae_seconds),
        "--seconds",
        json.dumps({"zero123plus": args.train_teacher}),
        "--seeds",
        "1",
        "--no-fp16-check",
        "--seed",
        str(args.seed),
        "--preset",
        args.teacher_preset,
        *(["--init-from", str(args.teacher_init_from)] if args.teacher_init_from else []),
    ]


def start_teacher(args) -> subprocess.Popen:
    if not TEACHER_SCRIPT.is_file():
        raise GS3DError(
            f"--train-teacher: {TEACHER_SCRIPT} is missing (run from a gs3d repository checkout, "
            "or train the teacher there and pass its directory)"
        )
    root = args.out / "teacher"
    root.mkdir(parents=True, exist_ok=True)
    log = root / "teacher.log"
    print(f"training the teacher for {args.train_teacher:g} s (log: {log})", flush=True)
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            teacher_command(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def finish_teacher(proc: subprocess.Popen, args, started: float) -> tuple[Path, dict]:
    """Wait for the teacher; its directory and record (seconds, the wait it cost GECO, its
    training and usefulness record)."""
    t0 = time.perf_counter()
    rc = proc.wait()
    waited = time.perf_counter() - t0
    root = args.out / "teacher"
    directory = root / "work" / "zero123plus" / "fp16"
    if rc != 0 or not (directory / "model_index.json").is_file():
        raise GS3DError(
            f"--train-teacher: the teacher run failed (exit code {rc}, no {directory}); "
            f"see {root / 'teacher.log'}"
        )
    record = {
        "directory": str(directory),
        "seconds": time.perf_counter() - started,
        "geco_waited_seconds": waited,
        "log": str(root / "teacher.log"),
    }
    summary = root / "out" / "results.json"
    if summary.is_file():
        teacher = json.loads(summary.read_text()).get("teachers", {}).get("zero123plus", {})
        record.update({k: teacher[k] for k in ("train", "checks", "useful") if k in teacher})
    return directory, record


def given_teacher(args) -> tuple[Path, dict | None]:
    """The teacher named on the command line: a diffusers directory as it is, or a packed teacher
    file (gs-priors' int8 pack, as a teacher run brought back from an earlier lease writes it)
    unpacked once into gs-priors' cache (``$GS3D_TEACHER_CACHE``, keyed by the file's hash: runs
    of several seeds on one file share it), so the teacher and GECO can take separate leases."""
    path = Path(args.teacher)
    if not path.is_file():
        return path, None
    from gs_priors.teachers.packing import unpacked_teacher

    directory = unpacked_teacher(path)
    return directory, {"packed": str(path), "directory": str(directory)}


# ---------------------------------------------------------------------------- training
def prepare_renderer(device: str) -> dict:
    """Load or JIT-compile gsplat before the first budgeted stage: on a fresh GPU machine the
    build takes 50-70 s, and inside the stage it would spend the stage's ``--budget-s`` (one
    H200, 2026-12-03: a 40 s reconstructor budget ran out at step 1 behind a 71 s build)."""
    from gs_core import rendering

    t0 = time.perf_counter()
    unavailable = rendering.build_before_children(device)
    if unavailable is not None:
        print(f"gsplat unavailable, rendering with the torch backend: {unavailable}", flush=True)
    return {"build_seconds": time.perf_counter() - t0, "gsplat_unavailable": unavailable}


def fit(module, run_dir: Path, device: str, quiet: bool, budget_s: float | None = None) -> dict:
    """Train ``module`` to its steps or ``budget_s``; its seconds, steps and why it stopped."""
    from gs_core.training import Trainer

    cfg = module.trainer_config().model_copy(
        update={
            "device": device,
            "progress": "off" if quiet else "lines",
            "tensorboard": "off",
            "checkpoint_every": 10**9,
            "log_every": 50,
        }
    )
    t0 = time.perf_counter()
    result = Trainer(module, run_dir, config=cfg, budget_s=budget_s).fit().raise_if_signalled()
    return {
        "seconds": time.perf_counter() - t0,
        "steps": result.step,
        "planned_steps": cfg.max_steps,
        "stopped_by": result.stopped_by,
    }


# ---------------------------------------------------------------------------- evaluation
def _six_view_targets(root: Path, oid: str, size: int):
    """Input RGBA ``[1, 4, H, W]`` and ground-truth six views ``[1, 6, 3, size, size]`` on gray."""
    import torch.nn.functional as F

    from gs_core.data.transforms import read_transforms
    from gs_core.data.views import load_object_views
    from gs_priors.zero123plus import GRAY

    record = read_transforms(root / oid)
    views = load_object_views(record)
    rgba = torch.from_numpy(np.ascontiguousarray(views.rgba)).permute(0, 3, 1, 2).float() / 255
    groups = [f.extras.get("group") for f in record.frames]
    inp = groups.index("input")
    six = sorted(
        (i for i, g in enumerate(groups) if g == "zero123pp"),
        key=lambda i: float(record.frames[i].extras["azimuth"]) % 360.0,
    )
    x = rgba[six]
    x = x[:, :3] * x[:, 3:] + GRAY * (1 - x[:, 3:])
    x = F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=True)
    return rgba[inp : inp + 1], x[None]


def _scores(pred: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    from gs_core.metrics.psnr import psnr
    from gs_core.metrics.ssim import ssim

    p = pred.flatten(0, 1).permute(0, 2, 3, 1).float().cpu().clamp(0, 1)
    t = target.flatten(0, 1).permute(0, 2, 3, 1).float().cpu()
    return float(psnr(p, t).mean()), float(ssim(p, t, padding="same").mean())


@torch.no_grad()
def evaluate_all(args, model, stage1, teacher, eval_root: Path, partial=None) -> dict:
    """Every Table 2 variant and the six-view scores; ``partial(results)`` is called after each
    variant, so a run cut short keeps what was measured."""
    from gs_core.data.layout import read_split
    from gs_core.evaluation.harness import EvalConfig, evaluate
    from gs_core.evaluation.predictors import Prediction
    from gs_method_geco.pseudo_ground_truth import teacher_views
    from gs_priors.samplers import sample
    from gs_priors.zero123plus import untile_views

    dev = model.device
    cfg = model.config

    def one_step_teacher(images, gen):
        cond = stage1.generator.encode_condition(images, gen)
        noise = stage1.generator.sample_noise(images.shape[0], gen)
        # "trailing": the single step runs at t = T - 1 (leading / linspace spacing would put
        # one step at t = 0 or 1, denoising pure noise as if it were nearly clean).
        res = sample(
            teacher,
            cond,
            tuple(noise.shape),
            steps=1,
            guidance_scale=cfg.teacher_guidance_scale,
            noise=noise,
            timestep_spacing="trailing",
        )
        return untile_views(teacher.decode_latents(res.latents))

    def many_step_teacher(images, gen):
        return teacher_views(stage1, teacher, images, gen)[1]

    def geco_views(m):
        def run(images, gen):
            cond = m.generator.encode_condition(images, gen)
            return m.views(m.generator.sample_noise(images.shape[0], gen), cond)

        return run

    variants = {
        "teacher_1step_lgm": (one_step_teacher, stage1),
        "teacher_75step_lgm": (many_step_teacher, stage1),
        "geco_without_stage2": (geco_views(stage1), stage1),
        "geco": (geco_views(model), model),
    }
    ecfg = EvalConfig(
        protocol="gso",
        frame="azimuth",
        metrics=["psnr", "ssim"],
        sheets=False,
        backend="auto",
        max_objects=args.eval_objects,
        resolution=64 if args.preset == "tiny" else 256,
        background="white",
    )
    results: dict = {"gaussians": {}, "six_views": {}}
    for name, (views_fn, recon) in variants.items():

        def predictor(oid, rgba, views_fn=views_fn, recon=recon, seed=None):
            gen = torch.Generator(dev).manual_seed(args.seed if seed is None else seed)
            t0 = time.perf_counter()
            g = recon.reconstruct(views_fn(rgba.to(dev), gen))
            return Prediction(gaussians=g[0], seconds=time.perf_counter() - t0)

        # GECO's own renders get contact sheets (input, ground truth, prediction per view),
        # one PNG per object under OUT/eval/geco/sheets: the picture of the run
        sheets = name == "geco"
        report = evaluate(
            predictor,
            eval_root,
            "test",
            ecfg.model_copy(update={"sheets": sheets}),
            out=args.out / "eval" / name if sheets else None,
            device=dev,
            label=name,
        )
        results["gaussians"][name] = report["mean"]
        if partial is not None:
            partial(results)
    ids = read_split(eval_root, "test")[: args.eval_objects]
    for name in ("teacher_75step", "generator_stage1", "generator"):
        fn = {
            "teacher_75step": many_step_teacher,
            "generator_stage1": geco_views(stage1),
            "generator": geco_views(model),
        }[name]
        rows = []
        for oid in ids:
            rgba, target = _six_view_targets(eval_root, oid, cfg.generator.view_size)
            gen = torch.Generator(dev).manual_seed(args.seed)
            rows.append(_scores(fn(rgba.to(dev), gen), target))
        results["six_views"][name] = {
            "psnr": float(np.mean([r[0] for r in rows])),
            "ssim": float(np.mean([r[1] for r in rows])),
        }
        if partial is not None:
            partial(results)
    return results


def _metric(mean: dict, name: str) -> float:
    """The harness's mean of ``name`` over every protocol view (``mean[name]["all"]``)."""
    value = mean[name]
    return float(value["all"] if isinstance(value, dict) else value)


def table2_ordering(results: dict) -> dict:
    g = results["gaussians"]
    out = {}
    for metric in ("psnr", "ssim"):
        a, b, c = (
            _metric(g[k], metric) for k in ("teacher_1step_lgm", "geco_without_stage2", "geco")
        )
        out[metric] = {"values": [a, b, c], "holds": bool(a < b < c)}
    return out


# ---------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    args = parse_args(argv)
    from gs_core.io.atomic import atomic_write_text, fresh_output_dir
    from gs_method_geco.config import GECOConfig
    from gs_method_geco.model import GECO
    from gs_method_geco.pseudo_ground_truth import (
        pseudo_ground_truth_set,
        save_pseudo_ground_truth,
    )
    from gs_method_geco.reconstructor_training import ReconstructorTrainingModule, ViewSets
    from gs_method_geco.training import (
        JointTrainingModule,
        VSDTrainingModule,
        condition_images,
    )
    from gs_priors.zero123plus import Zero123PlusGuidance

    fresh_output_dir(args.out, args.overwrite)
    torch.manual_seed(args.seed)
    quiet = args.preset == "tiny"
    device = args.device
    started = time.perf_counter()
    proc = start_teacher(args) if args.train_teacher is not None else None
    try:
        train_root, eval_root = make_data(args)
        renderer = prepare_renderer(device)
        teacher_dir, teacher_record = (
            finish_teacher(proc, args, started) if proc else given_teacher(args)
        )
    finally:
        if proc is not None and proc.poll() is None:  # GECO failed first: stop the teacher too
            proc.terminate()
            proc.wait()
    teacher = Zero123PlusGuidance.from_pretrained(
        teacher_dir, device=device, view_size=args.view_size
    )
    model = GECO.from_teacher(teacher, GECOConfig.preset(args.preset).with_overrides(args.set))
    cfg = model.config

    rc = cfg.reconstructor
    sets = ViewSets(train_root, "train", rc.lgm.input_size, cfg.render_resolution, rc.background)
    lgm_steps = 2 if quiet else args.lgm_steps
    module = ReconstructorTrainingModule(
        model, sets, steps=lgm_steps, batch_size=min(args.lgm_batch, len(sets))
    )
    budget = args.budget_s
    stages = {}
    stages["reconstructor"] = fit(
        module, args.out / "runs" / "reconstructor", device, quiet, budget.get("reconstructor")
    )

    images = condition_images(train_root, "train", resolution=max(64, cfg.generator.view_size))
    vsd = VSDTrainingModule(model, teacher, images=images)
    stages["stage1"] = fit(vsd, args.out / "runs" / "vsd", device, quiet, budget.get("stage1"))
    stage1 = copy.deepcopy(model).eval()

    gen = torch.Generator(device).manual_seed(args.seed)
    t0 = time.perf_counter()
    pgt = pseudo_ground_truth_set(model, teacher, images, gen, args.pseudo_batch)
    save_pseudo_ground_truth(args.out / "pseudo" / "pseudo_ground_truth.safetensors", pgt)
    pgt_seconds = time.perf_counter() - t0
    joint = JointTrainingModule(model, data=pgt)
    stages["stage2"] = fit(joint, args.out / "runs" / "joint", device, quiet, budget.get("stage2"))
    model.eval()

    def partial(results: dict) -> None:
        # The stages' record and the scores so far, replaced by results.json at the end.
        record = {**results, "stages": stages, "budget_s": budget, "complete": False}
        atomic_write_text(args.out / "results.partial.json", json.dumps(record, indent=2) + "\n")

    partial({})
    results = evaluate_all(args, model, stage1, teacher, eval_root, partial)
    results["table2_ordering"] = table2_ordering(results)
    results["train_seconds"] = {
        **{k: v["seconds"] for k, v in stages.items()},
        "pseudo_ground_truth": pgt_seconds,
    }
    results["stages"] = stages
    results["budget_s"] = budget
    results["renderer"] = renderer
    if teacher_record is not None:
        results["teacher"] = teacher_record
    results["preset"] = args.preset
    results["seed"] = args.seed
    results["overrides"] = args.set
    results["device"] = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    fp16 = copy.deepcopy(model).half()
    fp16.save_pretrained(args.out / "checkpoint", max_shard_bytes=SHARD_BYTES)
    atomic_write_text(args.out / "results.json", json.dumps(results, indent=2) + "\n")
    (args.out / "results.partial.json").unlink(missing_ok=True)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    try:
        main()
    except GS3DError as e:
        raise SystemExit(f"error: {e}") from None
