"""DD3G on the procedural world, in one command (the GPU proof of issue #19).

1. Student images: single input views of procedural objects generated with seed
   ``STUDENT_SEED`` (not the teacher's training objects, which
   ``gs-priors/scripts/train_procedural_teachers.py`` generates with seed 1003); only their
   first view is read - the student never sees ground-truth multi-view images.
2. Quadruples ``{N, C, II, OI}``: the procedural ImageDream teacher (``--teacher DIR``, loaded by
   ``ImageDreamGuidance.from_pretrained``), deterministic 50-step DDIM, in this run.
3. Variants x ``--seeds`` (model initialisation and data order), at equal steps: Table III
   (PEPD with joint / ES only / IV only) and Table II (hybrid, splatter, PD only and PEPD, all
   with explicit supervision as in the paper's Fig. 6). ``--jobs N`` trains N runs at once as
   child processes sharing the device (``--gpus 0,1`` spreads them over two GPUs);
   ``--budget-s`` caps each run's wall time. With a budget and no ``--steps``, a probe first
   runs every run at once for ``--probe-s`` seconds under the same load and measures its step
   rate and the time of one evaluation; the slowest run's rate then sets the common step count
   that fits the budget with ``--evals`` evaluations (at most the preset's schedule), so the
   curriculum of Eq. 6 (which reads ``i / I``) runs to its end in every variant instead of
   being cut off by the budget.
4. Evaluation every ``--eval-every`` steps (EMA weights) on procedural-eval objects (eval seed;
   24-view ring at elevation 0 so ring12 is available), ring12 targets relative to the input,
   predictions aligned to the input by the automatic azimuth search
   (gs_core.evaluation.alignment). The tables are read at the largest evaluated step that
   every run reached (equal steps even when a budget stopped some runs early): PSNR / SSIM
   mean and standard deviation over seeds, and whether each ordering's margins exceed that
   spread.
5. ``--out``: ``results.json`` and each variant's first seed's fp16 checkpoint in shards <=
   16 MiB. Runs of other leases (``--first-seed``) join it through ``scripts/summarise_runs.py``.
   Before results.json exists, ``OUT/work/runs/`` holds the setup (``setup.json``) and every
   run's record as of its last evaluation; ``summarise_runs.py`` reads that folder too, so a
   lease that ends early brings back what it measured.

    python plugins/gs-method-dd3g/scripts/train_small.py --teacher TEACHER_DIR --out OUT \
        [--seeds 2 --jobs 12 --budget-s 900 --evals 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import torch

from gs_method_dd3g.procedural_evaluation import (
    check_elevation_range,
    evaluate,
    input_elevations,
    input_images,
    input_on_white,
    make_objects,
    paired_views,
    ring12_targets,
)
from gs_method_dd3g.tables import (
    VARIANTS,
    aggregate,
    orderings,
    pairwise_flags,
    parse_variant,
    seed_plan,
    split_variants,
)

STUDENT_SEED = 1919
MISSING_VARIANTS: dict[str, str] = {}


def _eval_inputs(a, eval_root: Path) -> Path | None:
    """Where the evaluation's inputs at hidden elevations are (``--eval-elevation``), if any."""
    if tuple(a.eval_elevation) == (0.0, 0.0):
        return None
    return eval_root.parent / "eval-inputs"


def _baselines(root: Path, inputs: Path | None = None) -> dict:
    """PSNR / SSIM of the two no-3D references (:mod:`gs_core.evaluation.references`) on the
    students' targets: a blank white view and the input image shown at every target (the
    input of ``inputs`` where given). A student below them has learnt less than nothing about
    the unseen sides."""
    from gs_core.evaluation.references import score_references
    from gs_core.metrics.psnr import psnr
    from gs_core.metrics.ssim import ssim

    rows: dict[str, list[dict]] = {"blank": [], "input_copied": []}
    for views, source in paired_views(root, inputs):
        _, gt, idx = ring12_targets(views)
        refs = score_references(
            gt[idx],
            input_on_white(source),
            torch.ones(3),
            {"psnr": psnr, "ssim": ssim},
            {"ring12": idx},
        )
        for name, scores in refs.items():
            rows[name].append(scores)
    return {
        key: {m: float(np.mean([r[m]["ring12"] for r in rows[name]])) for m in ("psnr", "ssim")}
        for key, name in (("blank_white", "blank"), ("input_copied", "input_copied"))
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="ImageDream checkpoint directory (teacher)")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="small", choices=["small", "tiny"])
    p.add_argument("--steps", type=int, default=None, help="steps per run (default: preset)")
    p.add_argument("--student-images", type=int, default=512)
    p.add_argument(
        "--quadruples-per-image",
        type=int,
        default=1,
        help="teacher trajectories per student image, each from its own noise and cameras (IV-A: "
        "2.8M quadruples of 120k images, about 23; 1 is what tables before session 51 used)",
    )
    for flag, what in (
        (
            "--student-elevation",
            "each student image is seen from one elevation drawn from [LOW, HIGH], and the "
            "teacher's views C are at that elevation (the procedural ImageDream trained on "
            "[-30, 30] with input and views at one elevation). The student is not told it; the "
            "splatter baseline keeps its fixed input camera at elevation 0 (IV-C). 0 0, the "
            "default, is every earlier lease's data",
        ),
        (
            "--eval-elevation",
            "each evaluation object's input is seen from one elevation drawn from [LOW, HIGH] "
            "(the same object and input azimuth, rendered again); its ring12 targets stay at "
            "elevation 0. 0 0, the default, is procedural-eval's input at elevation 0",
        ),
    ):
        p.add_argument(
            flag,
            type=float,
            nargs=2,
            default=(0.0, 0.0),
            metavar=("LOW", "HIGH"),
            help=f"degrees, the input's angle hidden as in IV-A: {what}",
        )
    p.add_argument(
        "--quadruple-batch",
        type=int,
        default=16,
        help="rows per teacher call while making quadruples (16 reproduces earlier leases' "
        "quadruples; the generator's draws follow the batches)",
    )
    p.add_argument("--eval-objects", type=int, default=24)
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--eval-seeds", type=int, default=1, help="generation seeds per eval object")
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated rows; a row followed by +KEY=VALUE... trains it with settings of "
        "its own beside the others (a probe, e.g. pepd_joint+eta=0.2, or with a list "
        "splatter_es+splatter.down_channels=[24,48,96,192]), in no ordering",
    )
    p.add_argument("--seeds", type=int, default=1, help="training seeds per variant (0, 1, ...)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the first training seed (--seeds 2 --first-seed 2 trains seeds 2 and 3): a later "
        "lease adds seeds, and scripts/summarise_runs.py joins the leases' results",
    )
    p.add_argument(
        "--seeds-of",
        action="append",
        default=[],
        metavar="VARIANT=N",
        help="this variant trains N seeds from --first-seed instead of --seeds (repeatable): "
        "a lease adds seeds where a row needs them",
    )
    p.add_argument(
        "--eval-every", type=int, default=None, help="steps between evaluations (default: once)"
    )
    p.add_argument("--budget-s", type=float, default=None, help="wall-clock cap of each run")
    p.add_argument(
        "--probe-s",
        type=float,
        default=45.0,
        help="with --budget-s and no --steps: seconds of the rate probe before the runs",
    )
    p.add_argument(
        "--ready-timeout-s",
        type=float,
        default=600.0,
        help=argparse.SUPPRESS,  # how long the probe waits for every child to start training
    )
    p.add_argument(
        "--evals",
        type=int,
        default=4,
        help="evaluations per run when the probe sets the steps (the last at the end)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="the most steps a probe may fit (default: the preset's schedule, which the "
        "curriculum and the EMA are set for)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.85,
        help="share of the probed budget the steps may fill (start-up, contention changes)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at once (child processes); 0: every run of --variants and --seeds",
    )
    p.add_argument("--gpus", default=None, help="e.g. '0,1': children take these in turn")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every variant (e.g. iv_random_background=false), recorded",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run's --out")
    p.add_argument("--run", default=None, help=argparse.SUPPRESS)  # a child: NAME:SEED
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # a probing child
    return p


def _run_config(a, name: str, seed: int, latent_size: int, size: int, steps: int | None = None):
    from gs_method_dd3g import DD3GConfig

    base, settings = parse_variant(name)
    generator, objective, _ = VARIANTS[base]
    steps = steps or a.steps or DD3GConfig.preset(a.preset).train.max_steps
    return DD3GConfig.preset(
        a.preset,
        generator=generator,
        objective=objective,
        latent_size=latent_size,
        render_resolution=size,
        train={
            "max_steps": steps,
            "device": a.device,
            "checkpoint_every": steps,
            "progress": "off",
            "tensorboard": "off",
            "seed": seed,
        },
    ).with_overrides([*a.set, *settings])


class _ProbeWindow:
    """A training callback that times steps inside one wall-clock window shared by every
    concurrent probe: the parent writes ``go`` (``{"start": t0, "end": t1}``) once every child
    has started training, so no child is timed while another is still starting up. Without a
    ``go`` file (runs probed one at a time) the window opens after ``skip`` steps."""

    def __init__(self, ready: Path, go: Path | None, seconds: float, skip: int = 2):
        self.ready, self.go, self.seconds, self.skip = ready, go, seconds, skip
        self.window: tuple[float, float] | None = None
        self.first: tuple[int, float] | None = None
        self.last: tuple[int, float] | None = None

    def started(self) -> None:
        self.ready.parent.mkdir(parents=True, exist_ok=True)
        self.ready.write_text("ready\n")

    def step(self, step: int) -> str | None:
        now = time.time()
        if self.window is None:
            if self.go is None:
                if step >= self.skip:
                    self.window = (now, now + self.seconds)
            elif self.go.exists():
                w = json.loads(self.go.read_text())
                self.window = (w["start"], w["end"])
            if self.window is None:
                return None
        if now < self.window[0]:
            return None
        # A rate needs two step ends inside the window: on a loaded machine one step can
        # outlast a short window, so the window then stays open until the second one.
        if now > self.window[1] and self.last is not None:
            return "the probe's window closed"
        if self.first is None:
            self.first = (step, now)
        else:
            self.last = (step, now)
        return None

    def rate(self) -> float | None:
        if self.first is None or self.last is None:
            return None
        return (self.last[0] - self.first[0]) / max(1e-9, self.last[1] - self.first[1])


def _probe_one(
    a, name: str, seed: int, quads, teacher, eval_root: Path, out: Path, go: Path | None = None
) -> dict:
    """Train inside the probe's window, then evaluate once: the step rate under the full load
    and the evaluation's seconds, written for the parent (``work/probe/NAME-sSEED.json``)."""
    from gs_core.io.atomic import atomic_write_text
    from gs_core.training import Callback, Trainer
    from gs_method_dd3g import DD3G

    # The window, not max_steps, ends a probe (the curriculum's weights differ a little from
    # the real run's at the same step; the work of a step does not).
    size = int(teacher.image_size)
    cfg = _run_config(a, name, seed, quads.noise.shape[-1], size, steps=1_000_000)
    torch.manual_seed(seed)
    model = DD3G(cfg).to(a.device)
    probe_dir = out / "work" / "probe"
    window = _ProbeWindow(probe_dir / f"{name}-s{seed}.ready", go, a.probe_s)

    class Timed(Callback):
        def on_fit_start(self, trainer):
            window.started()

        def on_step_end(self, trainer, step, logs):
            return window.step(step)

    Trainer(
        model.training_module(quadruples=quads, teacher=teacher),
        probe_dir / f"{name}-s{seed}",
        callbacks=[Timed()],
        budget_s=a.probe_s + 900.0,  # a safety net: the window ends the probe
    ).fit().raise_if_signalled()
    t = time.time()
    evaluate(model, eval_root, a.eval_seeds, _eval_inputs(a, eval_root))
    record = {"variant": name, "seed": seed, "rate": window.rate(), "eval_s": time.time() - t}
    atomic_write_text(probe_dir / f"{name}-s{seed}.json", json.dumps(record, indent=1) + "\n")
    return record


def fitted_steps(
    probes: list[dict], budget_s: float, evals: int, margin: float, multiple: int = 10
) -> int:
    """The common step count every probed run completes within ``budget_s``: the slowest rate
    times what the budget leaves after ``evals`` evaluations (the slowest), times ``margin``,
    rounded down to a multiple of ``multiple`` (at least ``multiple``)."""
    rates = [p["rate"] for p in probes]
    if not probes or any(r is None or r <= 0 for r in rates):
        raise SystemExit(
            "the rate probe did not time every run (a run made too few steps in --probe-s, or "
            "crashed): raise --probe-s or pass --steps"
        )
    train_s = margin * budget_s - evals * max(p["eval_s"] for p in probes)
    if train_s <= 0:
        raise SystemExit(
            f"--budget-s {budget_s:g}: {evals} evaluations alone take longer; "
            "raise the budget or lower --evals"
        )
    steps = int(min(rates) * train_s) // multiple * multiple
    return max(multiple, steps)


def _train_one(a, name: str, seed: int, quads, teacher, eval_root: Path, out: Path) -> dict:
    """Train one variant with one seed, evaluating every ``--eval-every`` steps; the record is
    rewritten after each evaluation, so a run cut short keeps what it measured."""
    from gs_core.io.atomic import atomic_write_text
    from gs_core.training import Callback, Trainer
    from gs_method_dd3g import DD3G

    size = int(teacher.image_size)
    cfg = _run_config(a, name, seed, quads.noise.shape[-1], size)
    steps = cfg.train.max_steps
    every = a.eval_every or steps
    torch.manual_seed(seed)
    model = DD3G(cfg).to(a.device)
    record_path = out / "work" / "runs" / f"{name}-s{seed}.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record = {"variant": name, "seed": seed, "max_steps": steps, "evals": []}

    class EvaluateEvery(Callback):
        def on_step_end(self, trainer, step, logs):
            if step % every == 0 or step == steps:
                t = time.time()
                with trainer.averaged_weights():
                    m = evaluate(model, eval_root, a.eval_seeds, _eval_inputs(a, eval_root))
                model.train()
                record["evals"].append(
                    {"step": step, "eval_s": time.time() - t, "loss": logs.get("loss"), **m}
                )
                record["train_s"] = time.time() - t0
                atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")
                print(f"{name} seed {seed} step {step}: PSNR {m['psnr']:.2f}", flush=True)
            return None

    t0 = time.time()
    result = (
        Trainer(
            model.training_module(quadruples=quads, teacher=teacher),
            out / "work" / f"{name}-s{seed}",
            callbacks=[EvaluateEvery()],
            budget_s=a.budget_s,
        )
        .fit()
        .raise_if_signalled()
    )
    record.update(
        train_s=time.time() - t0,
        steps=result.step,
        stopped_by=result.stopped_by,
    )
    atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")
    if seed == a.first_seed:
        model.to(torch.float16).save_pretrained(
            out / "checkpoints" / name, overwrite=True, max_shard_bytes=16 * 2**20
        )
    return record


def _launch(
    a, runs, quads, teacher, eval_root: Path, out: Path, argv: list[str], gsplat: Future
) -> list[str]:
    """Every ``(variant, seed)`` of ``runs``: in this process (``--jobs 1``) or as up to
    ``--jobs`` child processes at once, each given ``argv`` and its ``--run``; ``gsplat`` is
    the build started while the data was made (``build_in_background``). Returns the runs whose
    child exited with an error."""
    from gs_core.io.atomic import atomic_write_text

    crashed: list[str] = []
    if a.jobs <= 1:
        for name, seed in runs:
            if "--probe" in argv:
                _probe_one(a, name, seed, quads, teacher, eval_root, out)
            else:
                _train_one(a, name, seed, quads, teacher, eval_root, out)
        return crashed
    gpus = a.gpus.split(",") if a.gpus else None
    pending, active = list(runs), []

    from gs_core.devices import child_environment

    if (why := gsplat.result()) is not None:
        print(f"warning: the runs will render with the torch backend: {why}", flush=True)

    def start(name: str, seed: int) -> None:
        gpu = None
        if gpus:  # the GPU with the fewest runs now
            gpu = min(gpus, key=lambda g: sum(x[2] == g for x in active))
        # The cores are shared by the runs there are, when --jobs names more.
        env = child_environment(min(a.jobs, len(runs)), gpu)
        cmd = [sys.executable, __file__, *argv, "--run", f"{name}:{seed}"]
        active.append(((name, seed), subprocess.Popen(cmd, env=env), gpu))

    def reap() -> None:
        for item in list(active):
            if item[1].poll() is not None:
                active.remove(item)
                if item[1].returncode:
                    crashed.append(f"{item[0][0]}:{item[0][1]}")
                    print(f"run {item[0]} failed (exit {item[1].returncode})", flush=True)

    if "--probe" in argv:
        # Waves of --jobs runs, each timed in one window that opens once all of them train.
        probe_dir = out / "work" / "probe"
        probe_dir.mkdir(parents=True, exist_ok=True)
        go = probe_dir / "go"
        while pending:
            wave, pending = pending[: a.jobs], pending[a.jobs :]
            go.unlink(missing_ok=True)
            for name, seed in wave:
                (probe_dir / f"{name}-s{seed}.ready").unlink(missing_ok=True)
                start(name, seed)
            # Open the window once every live child trains (a crashed one is not waited for;
            # one that never starts is given up on after --ready-timeout-s).
            give_up = time.time() + a.ready_timeout_s
            while time.time() < give_up and not all(
                (probe_dir / f"{n}-s{s}.ready").exists() or f"{n}:{s}" in crashed for n, s in wave
            ):
                time.sleep(0.2)
                reap()
            t0 = time.time() + 2.0  # every child is past its first steps by then
            atomic_write_text(go, json.dumps({"start": t0, "end": t0 + a.probe_s}) + "\n")
            while active:
                time.sleep(0.5)
                reap()
        return crashed
    while pending or active:
        while pending and len(active) < a.jobs:
            start(*pending.pop(0))
        time.sleep(0.5)
        reap()
    return crashed


def _setup(a, quads) -> dict:
    """What makes runs of different leases comparable (``summarise_runs.SETUP``), with the
    teacher and device they ran with."""
    from gs_core.procedural.generator import EVAL_SEED
    from gs_method_dd3g import DD3GConfig
    from gs_priors.teachers.packing import teacher_digest

    cfg = DD3GConfig.preset(a.preset).with_overrides(list(a.set))
    return {
        "preset": a.preset,
        "overrides": list(a.set),
        "teacher": str(a.teacher),
        "teacher_sha256": teacher_digest(a.teacher),
        "device": a.device,
        "quadruples": len(quads),
        "quadruples_per_image": a.quadruples_per_image,
        "quadruple_batch": a.quadruple_batch,
        "student_elevation": [float(x) for x in a.student_elevation],
        "eval_elevation": [float(x) for x in a.eval_elevation],
        "ddim_steps": a.ddim_steps,
        "protocol": "ring12+alignment",
        "student_seed": STUDENT_SEED,
        "eval_seed": EVAL_SEED,
        # How the verifier was normalised, scheduled and run (defaults changed in sessions 46
        # and 50; summarise_runs.verification fills in what older records lack).
        "verification": {
            "reduction": cfg.iv_reduction,
            "iv_only_schedule": cfg.iv_only_schedule,
            "random_background": cfg.iv_random_background,
            "guidance_scale": cfg.iv_guidance_scale,
        },
    }


def main(argv=None) -> dict:
    a = _parser().parse_args(argv)
    from gs_core.io.atomic import atomic_write_text
    from gs_method_dd3g import DD3GConfig
    from gs_method_dd3g.quadruples import QuadrupleSet, generate_quadruples
    from gs_priors import ImageDreamGuidance

    out = Path(a.out)
    work = out / "work"
    from gs_core.procedural.generator import EVAL_SEED

    if a.run:  # a child: one variant, one seed; data made by the parent
        name, seed = a.run.rsplit(":", 1)
        teacher = ImageDreamGuidance.from_pretrained(a.teacher, device=a.device)
        quads = QuadrupleSet.load(work / "quadruples")
        if a.probe:
            _probe_one(
                a, name, int(seed), quads, teacher, work / "eval", out, work / "probe" / "go"
            )
        else:
            _train_one(a, name, int(seed), quads, teacher, work / "eval", out)
        return {}

    try:
        names = split_variants(a.variants)
    except ValueError as e:
        raise SystemExit(f"--variants: {e}") from None
    try:
        runs = seed_plan(names, a.first_seed, a.seeds, a.seeds_of)
    except ValueError as e:
        raise SystemExit(f"--seeds-of: {e}") from None
    if a.jobs < 0:
        raise SystemExit(f"--jobs: expected 0 (every run at once) or a count, got {a.jobs}")
    a.jobs = a.jobs or len(runs)
    planned_seeds = sorted({s for _, s in runs})
    from gs_core.errors import GS3DError

    for flag, value in (
        ("--quadruples-per-image", a.quadruples_per_image),
        ("--quadruple-batch", a.quadruple_batch),
    ):
        if value < 1:
            raise SystemExit(f"{flag}: expected a positive integer, got {value}")
    for flag, (low, high) in (
        ("--student-elevation", a.student_elevation),
        ("--eval-elevation", a.eval_elevation),
    ):
        try:
            check_elevation_range(flag, low, high)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    lo, hi = a.student_elevation

    for n in names:  # every run's config is checked before the data is made
        try:
            settings = parse_variant(n)[1]
        except ValueError as e:
            raise SystemExit(f"--variants: {e}") from None
        try:
            DD3GConfig.preset(a.preset).with_overrides([*a.set, *settings])
        except GS3DError as e:
            raise SystemExit(f"--variants: {n!r}: {e}") from None
    from gs_core.io.atomic import fresh_output_dir

    fresh_output_dir(out, a.overwrite)
    t0 = time.time()
    # The objects are ray cast by forked workers before this process starts CUDA (forking a
    # process with a live CUDA context and its threads risks a deadlock in the children).
    size = int(ImageDreamGuidance.from_pretrained(a.teacher, device="cpu").image_size)
    train_root = make_objects(
        work / "student", a.student_images, size, STUDENT_SEED, "train", (lo, hi)
    )
    eval_root = make_objects(work / "eval", a.eval_objects, size, EVAL_SEED, "test")
    if _eval_inputs(a, eval_root) is not None:
        make_objects(
            _eval_inputs(a, eval_root), a.eval_objects, size, EVAL_SEED, "test", a.eval_elevation
        )
    from gs_core.rendering import build_in_background

    # Children render with gsplat, whose extension compiles once (about 70 s on the GPU
    # machine) before they start: it compiles beside the quadruples, now that nothing forks.
    gsplat = build_in_background(a.device)
    teacher = ImageDreamGuidance.from_pretrained(a.teacher, device=a.device)
    images = input_images(train_root, size)
    quads = generate_quadruples(
        teacher,
        images,
        steps=a.ddim_steps,
        generator=torch.Generator().manual_seed(0),
        batch_size=a.quadruple_batch,
        per_image=a.quadruples_per_image,
        input_elevations=input_elevations(train_root) if (lo, hi) != (0.0, 0.0) else None,
        progress=lambda done, total: print(f"quadruples: {done}/{total}", flush=True),
    )
    quads.save(work / "quadruples")
    data_s = time.time() - t0
    print(f"data: {len(quads)} quadruples and {a.eval_objects} eval objects in {data_s:.0f} s")
    setup = _setup(a, quads)
    # Beside the run records, which are rewritten after every evaluation: a lease that ends
    # before results.json brings back work/runs/ and summarise_runs.py reads it as it is.
    (work / "runs").mkdir(parents=True, exist_ok=True)
    atomic_write_text(work / "runs" / "setup.json", json.dumps(setup, indent=1) + "\n")
    forwarded = list(argv if argv is not None else sys.argv[1:])
    probe = None
    probe_failed: list[str] = []
    if a.budget_s is not None and a.steps is None:
        print(f"probe: {len(runs)} runs for {a.probe_s:g} s each", flush=True)
        probed = _launch(a, runs, quads, teacher, eval_root, out, [*forwarded, "--probe"], gsplat)
        probes = [
            json.loads(f.read_text())
            for n, s in runs
            if (f := work / "probe" / f"{n}-s{s}.json").exists()
        ]
        # A run whose probe failed would fail again: it is dropped (and listed as failed), and
        # the others go on with the steps their probes fit.
        timed = {(p["variant"], p["seed"]) for p in probes if p.get("rate")}
        probe_failed = [f"{n}:{s}" for n, s in runs if (n, s) not in timed]
        if probe_failed:
            print(f"probe failed for {probe_failed}: those runs are left out", flush=True)
        runs = [(n, s) for n, s in runs if (n, s) in timed]
        probes = [p for p in probes if (p["variant"], p["seed"]) in timed]
        if not runs:
            raise SystemExit(f"the rate probe failed for every run ({probed}); see the log")
        cap = a.max_steps or DD3GConfig.preset(a.preset).train.max_steps
        a.steps = min(fitted_steps(probes, a.budget_s, a.evals, a.margin), cap)
        if a.eval_every is None:
            # rounded up, so the last evaluation is the final step's (not one step before it)
            a.eval_every = max(1, -(-a.steps // max(1, a.evals)))
        probe = {"seconds": a.probe_s, "runs": probes, "steps": a.steps, "every": a.eval_every,
                 "failed": probe_failed}  # fmt: skip
        print(f"probe: {a.steps} steps per run, evaluated every {a.eval_every}", flush=True)
        forwarded += ["--steps", str(a.steps), "--eval-every", str(a.eval_every)]
    crashed = _launch(a, runs, quads, teacher, eval_root, out, forwarded, gsplat)
    records = []
    for name, seed in runs:
        f = work / "runs" / f"{name}-s{seed}.json"
        if f.exists():
            records.append(json.loads(f.read_text()))
    agg = aggregate(records)
    results = {
        **setup,
        "seeds": planned_seeds,
        "data_s": data_s,
        "probe": probe,
        "equal_steps": agg["step"],
        "runs_at_once": min(a.jobs, len(runs)),
        "baselines": _baselines(eval_root, _eval_inputs(a, eval_root)),
        "variants": agg["variants"],
        "orderings": orderings(agg["variants"]),
        "runs": records,
        "missing": MISSING_VARIANTS,
        "failed_runs": sorted(
            set(crashed)
            | set(probe_failed)
            | {
                f"{n}:{s}"
                for n, s in runs
                if not any(r["variant"] == n and r["seed"] == s and r["evals"] for r in records)
            }
        ),
    }
    v = results["variants"]
    results.update(pairwise_flags(v))
    results["wall_s"] = time.time() - t0
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    for name, row in v.items():
        print(f"{name}: PSNR {row['psnr']:.2f} ± {row['psnr_std']:.2f} SSIM {row['ssim']:.3f}")
    for name, row in results["baselines"].items():
        print(f"{name} (no 3D): PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f}")
    return results


if __name__ == "__main__":
    main()
