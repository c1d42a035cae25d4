"""Train the three procedural teachers (Zero123, Zero123++, ImageDream) and check that they are
useful, in one detached run on the two-GPU machine.

What it runs, in order:

1. data (CPU, every core): ``gs3d data procedural`` training sets of asymmetric objects, one per
   prior's camera layout (``random`` for Zero123, ``zero123pp`` for Zero123++, ``ring24`` for
   ImageDream; seeds 1001-1003, disjoint from the evaluation objects), and the held-out
   ``eval-hard`` objects in the same three layouts;
2. the shared VAE on GPU 0 (``--vae-seconds``);
3. the teachers, both GPUs at once: Zero123 on the first, ImageDream then Zero123++ on the
   second, each for its ``--seconds`` (``--gpus 0,0,0``: all three at once on one GPU); EMA weights saved fp16, then packed as one int8 file
   (:mod:`gs_priors.teachers.packing`);
4. evaluation of the packed (int8) teachers on the held-out objects: 50-step DDIM samples at
   guidance 1 and at the official pipeline's scale, seeds 0-2, against the ground truth and
   the copy / mirror baselines; the fp16 teachers once more at the official scale, to measure
   what int8 storage costs;
5. ``OUT/results.json``, ``OUT/<prior>.safetensors`` (the packed teachers) and ``OUT/done``.

Packed EMA checkpoints appear in ``WORK/<prior>/<prior>.safetensors`` every
``--checkpoint-every`` seconds; ``--resume DIR`` continues from packed teachers brought back
(``DIR/<prior>.safetensors``; their VAE is kept, the optimiser starts afresh); a teacher with no
pack in DIR trains from scratch on the VAE of a pack that is there. ``--init-from FILE`` starts a
new teacher from another's weights instead of random ones where their U-Nets match (Zero123++
from a useful Zero123: :mod:`gs_priors.teachers.warm_start`).

Usage on the GPU machine::

    setsid nohup python3 packages/gs-priors/scripts/train_procedural_teachers.py \\
        --work /tmp/teachers --out /tmp/teachers/out > /tmp/teachers.log 2>&1 < /dev/null &

On a CPU, ``--preset tiny --gpus cpu`` runs every step in seconds (the test does).
``--data-parallel`` trains each teacher over every ``--gpus`` entry at once instead (one process
per GPU, gradients averaged every step, the teachers one after another): Zero123 on both GPUs
of ``nvidia-h200-x2``; ``--gpus cpu,cpu`` runs it on a CPU (its test does).
Load a packed teacher with ``gs_priors.teachers.load_teacher(FILE)`` or the prior's
``from_pretrained(FILE)`` (unpacked once into a cache), or unpack it with
``gs_priors.teachers.packing.unpack_teacher(FILE, DIR)``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from gs_priors.samplers import SAMPLERS
from gs_priors.teachers.data import TRAIN_SEEDS
from gs_priors.teachers.evaluation import PRECISIONS

NAMES = ("zero123", "zero123plus", "imagedream")
CAMERA_PRIORS = ("zero123", "imagedream")
# Training sets: objects and views per object (sets of 7 for zero123pp, one ring of 24).
DATA = {
    "procedural": {"zero123": (3000, 12), "zero123plus": (3000, 14), "imagedream": (2000, 24)},
    "tiny": {"zero123": (4, 4), "zero123plus": (4, 7), "imagedream": (4, 24)},
}
# `--preset compact`: the procedural world and protocol, the architecture of the prior's
# compact-<prior> TeacherConfig preset (one small enough for the repository).
DATA["compact"] = DATA["procedural"]
EVAL_VIEWS = {"zero123": None, "zero123plus": 7, "imagedream": 24}
# Sets (rings for ImageDream) per held-out object in the multi-view priors' evaluation: with one,
# ImageDream's pose check rested on 48 pairs (a binomial standard error of about 5 points at
# 85%). The first set is the same as with one (its angles are the object's first draws).
EVAL_SETS = {"procedural": 4, "compact": 4, "tiny": 1}
# Zero123's pose check (the issue's +90 degree sample): inputs per held-out object turned
# exactly +-90 degrees (ray cast), two pairs each; 4 x 24 eval-hard objects = 192 pairs.
QUARTER_INPUTS = {"procedural": 4, "compact": 4, "tiny": 1}


def log(msg: str) -> None:
    if data_parallel_rank() > 0:  # rank 0 speaks for a --data-parallel run
        return
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)


def preset_name(preset: str, name: str) -> str:
    """The TeacherConfig preset of prior ``name`` under the script's ``--preset``."""
    return name if preset == "procedural" else f"{preset}-{name}"


def teacher_config(args, name: str, preset: str | None = None):
    """``name``'s config under ``preset`` (default ``--preset``) with ``--set`` applied."""
    from gs_priors.teachers import TeacherConfig

    cfg = TeacherConfig.preset(preset_name(preset or args.preset, name))
    # "KEY=VALUE" for every teacher, "PRIOR:KEY=VALUE" for that one only.
    items = []
    for item in args.set:
        prior, sep, rest = item.partition(":")
        if not sep:
            items.append(item)
        elif prior == name:
            items.append(rest)
    return cfg.with_overrides(items) if items else cfg


def eval_config(preset: str, name: str, resolution: int):
    """The eval-hard objects (same seed and indices) seen through ``name``'s layout."""
    from gs_core.procedural.generator import ProceduralConfig
    from gs_priors.teachers import LAYOUTS

    ev = ProceduralConfig.preset("eval-hard")
    overrides = {"resolution": resolution}
    if EVAL_VIEWS[name]:
        overrides |= {"camera_layout": LAYOUTS[name], "views": EVAL_VIEWS[name] * EVAL_SETS[preset]}
    if preset == "tiny":
        overrides |= {"objects": 2, "antialias": 1}
    return ProceduralConfig.model_validate(ev.model_copy(update=overrides).model_dump())


def generate_data(args, work: Path) -> None:
    from gs_core.procedural.generator import ProceduralConfig, generate
    from gs_priors.teachers import LAYOUTS

    workers = os.cpu_count() or 1
    for name in args.priors:
        cfg = teacher_config(args, name)
        objects, views = DATA[args.preset][name]
        if args.objects:
            objects = args.objects
        common = {
            "resolution": cfg.resolution,
            "camera_layout": LAYOUTS[name],
            "asymmetric": True,
            "points": 0,
            "depth": False,
            "normals": False,
        }
        train = ProceduralConfig(
            objects=objects, views=views, seed=TRAIN_SEEDS[name], split="train", **common
        )
        out = work / "data" / f"{name}-train"
        if not reusable(out, train) and not args.eval_only:
            s = generate(train, out, workers=workers, progress=False)
            log(f"data {name}: {s['views']} views in {s['seconds']:.1f} s")
        ev = eval_config(args.preset, name, cfg.resolution)
        out = work / "data" / f"{name}-eval"
        if not reusable(out, ev):
            generate(ev, out, workers=workers, progress=False)


def reusable(out: Path, cfg) -> bool:
    """Whether ``out`` holds the data ``cfg`` makes (a second run in one WORK reuses it). A
    folder made by another configuration (an earlier version's evaluation, another --objects)
    stops the run with one line, rather than being scored as if it were this one's."""
    from gs_core.data.layout import read_dataset_meta
    from gs_core.errors import ValidationError

    if not out.exists():
        return False
    made = read_dataset_meta(out).get("config")
    want = json.loads(json.dumps(cfg.model_dump()))
    if made != want:
        diff = sorted(k for k in set(want) | set(made or {}) if (made or {}).get(k) != want.get(k))
        raise ValidationError(
            str(out),
            "the data this run's configuration makes (remove the folder or use another --work)",
            f"data made with other settings ({', '.join(diff) or 'no recorded configuration'})",
        )
    return True


def train_vae_stage(args, work: Path, device: str) -> dict:
    from gs_priors.teachers import ViewBank, build_vae, train_vae

    out = work / "vae"
    if (out / "config.json").exists():
        return json.loads((work / "vae.json").read_text())
    if args.resume is not None:
        # Continuing teachers keep the VAE their latents were trained on; a teacher new beside
        # another's pack takes that pack's VAE (one shared VAE, and its two minutes saved).
        from gs_priors.teachers.packing import unpack_teacher

        names = [*args.priors, *(n for n in NAMES if n not in args.priors)]
        packed = next(
            (
                args.resume / f"{n}.safetensors"
                for n in names
                if (args.resume / f"{n}.safetensors").exists()
            ),
            None,
        )
        if packed is not None:
            tmp = unpack_teacher(packed, work / "resumed-vae-source")
            shutil.copytree(tmp / "vae", out)
            stats = {"resumed_from": str(packed)}
            write_json(work / "vae.json", stats)
            log(f"vae: taken from {packed}")
            return stats
    # One shared VAE of the procedural size: a compact teacher shrinks its U-Net and towers,
    # not the VAE its latents come from.
    cfg = teacher_config(args, "zero123", "procedural" if args.preset == "compact" else None)
    banks = [
        ViewBank.load(
            work / "data" / f"{n}-train",
            cfg.resolution if n != "zero123plus" else None,
            device,
            workers=os.cpu_count() or 1,
            max_objects=args.vae_objects,
        )
        for n in args.priors
    ]
    vae = build_vae(cfg).to(device)
    stats = train_vae(vae, banks, seconds=args.vae_seconds, steps=args.vae_steps, log=log)
    vae.to(torch.float32).save_pretrained(out)
    write_json(work / "vae.json", stats)
    log(f"vae: {stats}")
    return stats


def guidance_scales(text: str) -> tuple[float, ...]:
    """``--guidance``'s value: comma-separated positive numbers."""
    try:
        scales = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        scales = ()
    if not scales or any(g <= 0 for g in scales):
        raise argparse.ArgumentTypeError(f"expected positive numbers like 1.5,2,3, got {text!r}")
    return scales


def eval_pairs(work: Path, name: str, resolution: int):
    """Every held-out pair of ``name`` (the evaluation scores ``--eval-pairs`` of them; the
    sample sheet shows whole inputs, each with all its views)."""
    from gs_core.evaluation.novel_views import view_pairs
    from gs_priors.teachers.evaluation import teacher_background

    bg = teacher_background(name)
    pairs = view_pairs(work / "data" / f"{name}-eval", resolution=resolution, background=bg)
    if name == "imagedream":
        pairs = [p for p in pairs if round(abs(p.d_azimuth)) in (90, 180)]
    return pairs


def warm_start_teacher(args, name: str, directory: Path) -> dict | None:
    """``--init-from``'s weights in the new teacher ``directory`` where its prior can start from
    them; what was copied, or None."""
    from gs_priors.teachers.warm_start import (
        can_warm_start,
        summarise,
        teacher_prior,
        warm_start,
    )

    if args.init_from is None or not can_warm_start(name, teacher_prior(args.init_from)):
        return None
    summary = summarise(warm_start(directory, args.init_from))
    log(f"{name}: warm start from {args.init_from}: {json.dumps(summary)}")
    return {"from": str(args.init_from), "modules": summary}


def run_teacher(args, work: Path, name: str, device: str) -> dict:
    """Train, pack and evaluate one teacher; writes ``WORK/<name>/result.json``."""
    from gs_priors.teachers import (
        TeacherTrainer,
        ViewBank,
        load_teacher,
        write_teacher,
    )
    from gs_priors.teachers.packing import pack_teacher, unpack_teacher

    cfg = teacher_config(args, name)
    rank = data_parallel_rank()
    root = work / name
    resumed = args.resume / f"{name}.safetensors" if args.resume is not None else None
    if resumed is not None and not resumed.exists():
        resumed = None
    directory = root / "fp16"
    warm = None
    if rank == 0:  # data parallel: rank 0 writes the teacher, every rank loads it
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        if resumed is not None:
            # Continue from weights brought back (int8-rounded; the optimiser state starts
            # afresh, so the learning-rate warm-up runs again).
            directory = unpack_teacher(resumed, directory)
            log(f"{name}: continuing from {resumed}")
        elif args.eval_only:
            raise SystemExit(f"--eval-only: {resumed} is missing (the packed {name} to evaluate)")
        else:
            directory = write_teacher(cfg, directory, work / "vae", seed=args.seed)
            warm = warm_start_teacher(args, name, directory)
    data_parallel_barrier()
    if args.eval_only and rank > 0:
        return {}
    packed = root / f"{name}.safetensors"
    if args.eval_only:
        # The brought-back teacher as it is: no step, no EMA update, the same int8 file.
        shutil.copy(resumed, packed)
        return evaluate_packed(
            args,
            work,
            name,
            device,
            cfg,
            packed,
            directory,
            {"steps": 0, "resumed_from": str(resumed)},
        )
    prior = load_teacher(directory, device=device)
    bank = ViewBank.load(
        work / "data" / f"{name}-train",
        cfg.resolution,
        device,
        workers=min(16, os.cpu_count() or 1),
    )
    log(f"{name}: {bank.num_objects} objects x {bank.views_per_object} views on {device}")
    trainer = TeacherTrainer(
        prior,
        cfg,
        bank,
        seed=args.seed,
        compile=args.compile or args.compile_graphs,
        compile_graphs=args.compile_graphs,
    )
    seconds = args.seconds.get(name) if args.seconds else None
    stats = {"steps": 0, "seconds": 0.0, "history": []}
    trainer.set_horizon(seconds=seconds, steps=args.steps)
    while True:
        # Segments of --checkpoint-every seconds, each ending in a packed EMA checkpoint, so a
        # run cut short (a lease ending) still leaves weights to bring back.
        left_s = None if seconds is None else seconds - stats["seconds"]
        left_steps = None if args.steps is None else args.steps - stats["steps"]
        seg = trainer.train(
            seconds=None if left_s is None else min(left_s, args.checkpoint_every),
            steps=left_steps,
            log=log,
            log_every=args.log_every,
        )
        stats = {
            **seg,
            "steps": stats["steps"] + seg["steps"],
            "seconds": stats["seconds"] + seg["seconds"],
            "history": stats["history"] + seg["history"],
        }
        if rank == 0:
            trainer.save(directory)
            pack_teacher(directory, packed)
            log(f"{name}: checkpoint after {stats['steps']} steps -> {packed}")
        if name in CAMERA_PRIORS and rank == 0:
            stats.setdefault("camera_gap", []).append(
                {"step": stats["steps"], **_camera_gap(prior, name, bank, trainer)}
            )
            log(f"{name}: camera use {json.dumps(stats['camera_gap'][-1])}")
        if (left_steps is not None and seg["steps"] >= left_steps) or (
            left_s is not None and seg["seconds"] >= left_s
        ):
            break
    world = trainer.world
    stats["samples_per_second"] = (
        stats["steps"] * cfg.batch_size * world / max(stats["seconds"], 1e-9)
    )
    stats["data_parallel_ranks"] = world
    stats["resumed_from"] = None if resumed is None else str(resumed)
    stats["warm_start"] = warm if rank == 0 else None
    trainer.use_ema()
    del trainer, bank, prior
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    if rank > 0:  # rank 0 evaluates; the others wait for the next teacher at its barrier
        return stats
    if not args.evaluate:
        result = {**result_head(name, cfg, stats, packed), "evaluation": "skipped (--no-eval)"}
        write_json(root / "result.json", result)
        log(f"{name}: packed after {stats['steps']} steps, not evaluated (--no-eval)")
        return result
    return evaluate_packed(args, work, name, device, cfg, packed, directory, stats)


def data_parallel_rank() -> int:
    """This process's rank in a ``--data-parallel`` run (0 otherwise)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def data_parallel_barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def data_parallel_environments(entries: list[str], port: int) -> list[dict[str, str]]:
    """The environments of a ``--data-parallel`` run's processes, one per ``--gpus`` entry
    (``cpu`` entries: gloo on the CPU, for tests): ``torch.distributed``'s env:// rendezvous on
    this machine."""
    from gs_core.devices import child_environment

    envs = []
    for rank, entry in enumerate(entries):
        env = child_environment(len(entries), None if entry == "cpu" else entry)
        env.update(
            RANK=str(rank),
            WORLD_SIZE=str(len(entries)),
            LOCAL_RANK="0",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        envs.append(env)
    return envs


def wait_all(procs: list[subprocess.Popen], stop_on_failure: bool) -> list[int]:
    """The children's exit codes. ``stop_on_failure`` (data parallel): one that fails stops the
    others, which would otherwise wait in their next collective for the one gone."""
    while stop_on_failure and any(proc.poll() is None for proc in procs):
        if any(proc.poll() not in (None, 0) for proc in procs):
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            break
        time.sleep(1.0)
    return [proc.wait() for proc in procs]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quarter_pairs(args, work: Path, name: str, resolution: int):
    """The issue's pose check for a single-view prior: held-out inputs turned +-90 degrees."""
    from gs_core.evaluation.novel_views import quarter_turn_pairs
    from gs_priors.teachers.evaluation import spread_subset

    pairs = quarter_turn_pairs(
        work / "data" / f"{name}-eval",
        resolution=resolution,
        inputs_per_object=QUARTER_INPUTS[args.preset],
    )
    return spread_subset(pairs, args.eval_pairs)  # --eval-pairs bounds these too (a CPU's time)


def result_head(name: str, cfg, stats: dict, packed: Path) -> dict:
    """What every teacher's ``result.json`` starts with, evaluated or not."""
    return {
        "prior": name,
        "config": cfg.model_dump(),
        "train": stats,
        "packed_bytes": packed.stat().st_size,
    }


def evaluate_packed(
    args, work: Path, name: str, device: str, cfg, packed: Path, directory: Path, stats: dict
) -> dict:
    """Evaluate the packed (int8) teacher ``packed`` and, unless ``--no-fp16-check``, the fp16
    one in ``directory``; writes ``WORK/<name>/result.json`` as results come in."""
    from gs_priors.teachers import (
        PAPER_GUIDANCE,
        ViewBank,
        evaluate_teacher,
        load_teacher,
        usefulness,
    )
    from gs_priors.teachers.evaluation import spread_subset
    from gs_priors.teachers.packing import unpack_teacher

    root = work / name
    int8_dir = unpack_teacher(packed, root / "int8")
    # Cheapest first, each written as soon as it is known: a lease that ends during the
    # evaluation still leaves the camera check and the int8 results in result.json.
    result = {**result_head(name, cfg, stats, packed), "camera_gap_held_out": None}
    prior = load_teacher(int8_dir, device=device)
    if name in CAMERA_PRIORS:
        eval_bank = ViewBank.load(work / "data" / f"{name}-eval", cfg.resolution, device)
        camera_eval = _camera_gap(prior, name, eval_bank)
        result["camera_gap_held_out"] = camera_eval
        write_json(root / "result.json", result)
        log(f"{name}: camera use on held-out objects {json.dumps(camera_eval)}")
    result["condition_use"] = _condition_use(work, name, cfg, prior)
    write_json(root / "result.json", result)
    log(
        f"{name}: condition use (least gain, dB) {json.dumps(result['condition_use']['least_gain_db'])}"
    )
    result["guidance_effect"] = _guidance_effect(work, name, cfg, prior, args.eval_steps)
    write_json(root / "result.json", result)
    log(f"{name}: guidance effect {_colour_line(result['guidance_effect'])}")
    every = eval_pairs(work, name, cfg.resolution)
    pairs = spread_subset(every, args.eval_pairs)
    scales = sorted({1.0, PAPER_GUIDANCE[name], *args.guidance})
    seeds = tuple(range(args.seeds))
    t0 = time.perf_counter()
    sampler, precision = args.eval_sampler, args.eval_precision
    reports = evaluate_teacher(
        prior,
        name,
        pairs,
        scales,
        seeds,
        steps=args.eval_steps,
        progress=log,
        sampler=sampler,
        precision=precision,
        guidance_rescale=args.guidance_rescale,
    )
    quarter = None
    if name == "zero123":  # its held-out pairs turn by random angles: +-90 degrees on its own
        quarter = evaluate_teacher(
            prior,
            name,
            quarter_pairs(args, work, name, cfg.resolution),
            [PAPER_GUIDANCE[name]],
            seeds,
            steps=args.eval_steps,
            progress=log,
            sampler=sampler,
            precision=precision,
            guidance_rescale=args.guidance_rescale,
        )[PAPER_GUIDANCE[name]]
        log(f"{name} quarter turns, guidance {PAPER_GUIDANCE[name]}:\n{quarter.to_markdown()}")
    if args.sheet:
        write_sheet(args, root, name, prior, every, scales)
    del prior
    checks = usefulness(reports, PAPER_GUIDANCE[name], quarter)
    result.update(
        {
            "eval_seconds": time.perf_counter() - t0,
            "eval_sampler": sampler,
            "eval_precision": precision,
            "eval_guidance_rescale": args.guidance_rescale,
            "reports": {str(g): _report(r) for g, r in reports.items()},
            "quarter_turn": None if quarter is None else _report(quarter),
            "fp16_at_paper_scale": None,
            "checks": checks,
            "useful": all(c["passed"] for c in checks.values()),
        }
    )
    write_json(root / "result.json", result)
    for g, r in reports.items():
        log(f"{name} guidance {g}:\n{r.to_markdown()}")
    log(f"{name}: checks {json.dumps(checks, default=float)}")
    if args.fp16_check:
        fp16 = evaluate_teacher(
            load_teacher(directory, device=device),
            name,
            pairs,
            [PAPER_GUIDANCE[name]],
            seeds,
            steps=args.eval_steps,
            progress=log,
            sampler=sampler,
            precision=precision,
            guidance_rescale=args.guidance_rescale,
        )[PAPER_GUIDANCE[name]]
        result["fp16_at_paper_scale"] = _report(fp16)
        write_json(root / "result.json", result)
    return result


def write_sheet(args, root: Path, name: str, prior, pairs, scales) -> None:
    """``WORK/<name>/samples.png``: ``--sheet`` held-out inputs, their true views and seed 0's
    samples at every evaluated scale, drawn as the evaluation draws them."""
    from gs_core.imaging import save_image
    from gs_priors.teachers.sheet import sample_sheet

    image = sample_sheet(
        prior,
        name,
        pairs,
        scales,
        inputs=args.sheet,
        steps=args.eval_steps,
        sampler=args.eval_sampler,
        precision=args.eval_precision,
        guidance_rescale=args.guidance_rescale,
    )
    save_image(root / "samples.png", image)
    log(f"{name}: samples of {args.sheet} held-out inputs -> {root / 'samples.png'}")


def _camera_gap(prior, name: str, bank, trainer=None) -> dict:
    """Does the prior use its camera yet (:func:`gs_priors.teachers.camera_gap` on one fixed
    batch of ``bank``, in eval mode)?"""
    from gs_priors.teachers import camera_gap
    from gs_priors.teachers.data import BATCHES

    batch = BATCHES[name](bank, 64 if name == "zero123" else 16, torch.Generator(bank.rgba.device))
    with (
        trainer.evaluating() if trainer is not None else contextlib.nullcontext(),
        torch.autocast(prior.device.type, torch.bfloat16, enabled=prior.device.type == "cuda"),
    ):
        return {str(t): v for t, v in camera_gap(prior, name, batch).items()}


def _condition_use(work: Path, name: str, cfg, prior) -> dict:
    """Has the teacher learned its condition or memorised its training objects
    (:mod:`gs_priors.teachers.condition_use`): its condition against the null one on 32 draws
    from its first 64 training objects (when this WORK holds them: not after --eval-only in a
    new WORK) and from the held-out objects, in bf16 on a GPU as the sampling checks."""
    from gs_priors.teachers import ViewBank
    from gs_priors.teachers.condition_use import condition_use_record, condition_use_split
    from gs_priors.teachers.data import BATCHES

    batches = {}
    for split, folder in (("train", f"{name}-train"), ("unseen", f"{name}-eval")):
        path = work / "data" / folder
        if (path / "dataset.json").exists():
            bank = ViewBank.load(path, cfg.resolution, prior.device, max_objects=64)
            batches[split] = BATCHES[name](bank, 32, torch.Generator(bank.rgba.device))
    with torch.autocast(prior.device.type, torch.bfloat16, enabled=prior.device.type == "cuda"):
        rows = condition_use_split(prior, name, batches)
    return condition_use_record(rows)


def _guidance_effect(work: Path, name: str, cfg, prior, steps: int) -> dict:
    """What guidance at the official scale does to 32 held-out draws against guidance 1
    (:mod:`gs_priors.teachers.guidance_effect`): whether the teacher's colours are washed out at
    scale 1 (guidance helps) or already right (guidance overshoots), in bf16 on a GPU."""
    from gs_priors.teachers import PAPER_GUIDANCE, ViewBank
    from gs_priors.teachers.data import BATCHES
    from gs_priors.teachers.guidance_effect import guidance_effect

    bank = ViewBank.load(work / "data" / f"{name}-eval", cfg.resolution, prior.device)
    batch = BATCHES[name](bank, 32, torch.Generator(bank.rgba.device))
    entries = ((1.0, None), (float(PAPER_GUIDANCE[name]), None))
    with torch.autocast(prior.device.type, torch.bfloat16, enabled=prior.device.type == "cuda"):
        return guidance_effect(prior, name, batch, entries, steps=steps)


def _colour_line(effect: dict) -> str:
    t = effect["truth"]
    parts = [f"truth chroma {t['chroma']:.3f}"] + [
        f"guidance {e['scale']:g}: chroma {e['chroma']:.3f}, latent MSE {e['latent_mse']:.4f}"
        for e in effect["entries"]
    ]
    return "; ".join(parts)


def _report(r) -> dict:
    return {
        "methods": {k: vars(v) for k, v in r.methods.items()},
        "margin_far_db": r.margin_far_db,
        "pose_accuracy": r.pose_accuracy,
        "pose_pairs": r.pose_pairs,
        "pose_accuracy_far": r.pose_accuracy_far,
        "pose_pairs_far": r.pose_pairs_far,
        "pose_far_by_gap": r.pose_far_by_gap,
        "pose_far_by_turn": r.pose_far_by_turn,
        "pose_accuracy_quarter": r.pose_accuracy_quarter,
        "pose_pairs_quarter": r.pose_pairs_quarter,
        "seed_diversity_far": r.seed_diversity_far,
        "pairs": r.pairs,
        "far_pairs": r.far_pairs,
        "seeds": r.seeds,
        "markdown": r.to_markdown(),
    }


def teacher_chains(devices: int, priors=NAMES) -> list[list[str]]:
    """The teachers (of ``priors``) each device entry trains, one after another: one teacher per
    entry while there are enough, else Zero123 (the longest run) alone and the rest shared.
    ``--gpus`` may name a GPU more than once: three processes on one H200 (``--gpus 0,0,0``)
    each train at about half their speed alone, 1.4x the throughput of one at a time."""
    chosen = [n for n in ("zero123", "imagedream", "zero123plus") if n in priors]
    if devices <= 1 or not chosen:
        return [chosen] if chosen else []
    if len(chosen) <= devices:
        return [[n] for n in chosen]
    return [[n] for n in chosen[: devices - 1]] + [chosen[devices - 1 :]]


def _unit_float(text: str) -> float:
    """An argparse type: a float in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a float in [0, 1], got {text!r}")
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--preset",
        choices=("procedural", "compact", "tiny"),
        default="procedural",
        help="procedural: the teachers' size; compact: the procedural world and protocol with "
        "the compact-<prior> architecture (ImageDream, small enough for the repository, and "
        "Zero123 and Zero123++ at its widths, to warm-start from it); tiny: CPU-sized, for tests",
    )
    p.add_argument(
        "--gpus",
        default="0,1",
        help="'0,1', '0', 'cpu', or a GPU named once per teacher ('0,0,0': all three at once)",
    )
    p.add_argument("--objects", type=int, default=None, help="training objects per prior")
    p.add_argument("--vae-seconds", type=float, default=180.0)
    p.add_argument("--vae-steps", type=int, default=None)
    p.add_argument("--vae-objects", type=int, default=1000)
    p.add_argument(
        "--seconds",
        type=json.loads,
        default=None,
        help='per prior, e.g. \'{"zero123": 600, "imagedream": 300, "zero123plus": 300}\'',
    )
    p.add_argument("--steps", type=int, default=None, help="steps per teacher (instead of seconds)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[PRIOR:]KEY=VALUE",
        help="a TeacherConfig field for every teacher, e.g. loss_weighting=v, or for one, e.g. "
        "zero123:cooldown=1 (repeatable)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="a folder of packed teachers (<prior>.safetensors) to continue training",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="a packed teacher (or its directory) whose weights start the new teachers that can "
        "take them instead of random ones: Zero123++ from Zero123 or ImageDream, Zero123 from "
        "ImageDream (U-Net and CLIP tower); a teacher continued by --resume keeps its own",
    )
    p.add_argument(
        "--checkpoint-every",
        type=float,
        default=240.0,
        help="seconds between packed EMA checkpoints in WORK/<prior>/",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile each U-Net in place (benchmarks/teachers.py says whether it pays)",
    )
    p.add_argument(
        "--compile-graphs",
        action="store_true",
        help="compile each U-Net in reduce-overhead mode (CUDA graphs; CUDA only): Zero123's "
        "step 2.7x faster than eager on an H200, Zero123++'s 2.6x, ImageDream's 1.9x (README)",
    )
    p.add_argument(
        "--data-parallel",
        action="store_true",
        help="train each teacher over every --gpus entry at once (one process per GPU, "
        "gradients averaged each step, a batch per GPU), the teachers one after another; "
        "'--gpus cpu,cpu' on a CPU",
    )
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--guidance",
        type=guidance_scales,
        default=(),
        help="more guidance scales to sample and report, e.g. 1.5,2,3 (the checks read 1 and "
        "the official scale, which are always sampled)",
    )
    p.add_argument(
        "--eval-steps", type=int, default=50, help="sampler steps of the evaluation samples"
    )
    p.add_argument(
        "--eval-sampler",
        default="ddim",
        choices=SAMPLERS,
        help="the evaluation's sampler: DDIM (the usefulness checks' protocol), or e.g. euler_a "
        "(Zero123++'s shipped Euler-ancestral scheduler) or ddpm to see whether a result is the "
        "deterministic sampler's; result.json records it",
    )
    p.add_argument(
        "--eval-precision",
        default="bf16",
        choices=PRECISIONS,
        help="the evaluation's arithmetic on a GPU: bf16 autocast (the default), or fp32 with TF32 "
        "off, to see whether guidance amplifies bf16's rounding (a CPU always runs fp32); "
        "result.json records it",
    )
    p.add_argument(
        "--guidance-rescale",
        type=_unit_float,
        default=0.0,
        metavar="PHI",
        help="the evaluation's guidance rescale in [0, 1] (Lin et al. 2024; diffusers' "
        "guidance_rescale): 0, off, is the usefulness checks' protocol; e.g. 0.7 to see whether "
        "what guidance costs is its over-saturation; result.json records it",
    )
    p.add_argument(
        "--eval-pairs",
        type=int,
        default=None,
        help="evaluate at most this many held-out pairs, evenly spread (default: all; a CPU "
        "takes about 80 minutes at guidance 3 and 35 at 1, per seed, for Zero123's 888)",
    )
    p.add_argument(
        "--no-eval",
        dest="evaluate",
        action="store_false",
        help="train and pack only: result.json holds the training's statistics and no checks "
        "(the first stage of teacher.sh's THEN_SECONDS, whose second stage is the one evaluated: "
        "about 70 s of a one-lease rebuild)",
    )
    p.add_argument(
        "--no-fp16-check",
        dest="fp16_check",
        action="store_false",
        help="skip sampling the fp16 teacher at the paper scale (the int8 storage check)",
    )
    p.add_argument(
        "--sheet",
        type=int,
        default=4,
        metavar="N",
        help="draw N held-out inputs' true views and samples (seed 0, every evaluated scale) "
        "into OUT/<prior>-samples.png; 0: none",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument(
        "--priors",
        choices=NAMES,
        nargs="+",
        default=list(NAMES),
        help="the teachers to train (default: all three); with --resume, e.g. one brought back",
    )
    p.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate the teachers in --resume as they are (no training data, no step)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run's --out")
    p.add_argument("--only", choices=NAMES, nargs="+", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.compile_graphs and not torch.cuda.is_available():
        p.error("--compile-graphs: needs a CUDA GPU (CUDA graphs)")
    if args.sheet < 0:
        p.error(f"--sheet: 0 or more inputs, got {args.sheet}")
    if args.eval_pairs is not None and args.eval_pairs < 1:
        p.error(f"--eval-pairs: at least 1, got {args.eval_pairs}")
    entries = args.gpus.split(",")
    if args.data_parallel and len(entries) < 2:
        p.error(
            f"--data-parallel: --gpus names one device ({args.gpus}); name two or more, e.g. 0,1"
        )
    if args.data_parallel and len(set(entries)) < len(entries) and "cpu" not in entries:
        p.error(f"--data-parallel: --gpus {args.gpus} names a GPU twice; one process per GPU")
    if args.eval_only and not args.evaluate:
        p.error("--no-eval: --eval-only does nothing else than evaluate")
    if args.eval_only and args.resume is None:
        p.error("--eval-only: needs --resume DIR, the packed teachers to evaluate")
    if args.eval_only:
        for name in args.priors:
            if not (args.resume / f"{name}.safetensors").exists():
                p.error(f"--eval-only: {args.resume / (name + '.safetensors')} is missing")
    for item in args.set:
        prior, sep, _ = item.partition(":")
        if sep and prior not in NAMES:
            p.error(f"--set {item}: unknown prior {prior!r} (expected one of {', '.join(NAMES)})")
    from gs_core.errors import GS3DError

    try:  # a bad field fails here, not after minutes of data
        for name in args.priors:
            teacher_config(args, name)
    except GS3DError as e:
        p.error(f"--set: {e}")
    if args.init_from is not None:
        from gs_priors.teachers.warm_start import SOURCES, can_warm_start, teacher_prior

        try:
            source = teacher_prior(args.init_from)
        except GS3DError as e:
            p.error(f"--init-from: {e}")
        if args.eval_only or not any(can_warm_start(n, source) for n in args.priors):
            known = ", ".join(f"{t} from {s}" for t, by in SOURCES.items() for s in by)
            p.error(
                f"--init-from: no teacher to train in --priors can start from a {source} teacher "
                f"(known: {known})"
            )
    if args.eval_only:
        args.fp16_check = False  # the fp16 weights would be the int8 ones dequantized
    if args.seconds is None and args.steps is None:
        args.seconds = {"zero123": 600, "imagedream": 300, "zero123plus": 300}
    work = args.work
    if not args.only:  # the parent: --out holds packed teachers, never overwritten unasked
        from gs_core.io.atomic import fresh_output_dir

        if args.resume is not None and Path(args.resume).resolve() == args.out.resolve():
            p.error("--resume: the packed teachers to continue must not be in --out")
        fresh_output_dir(args.out, args.overwrite)
    work.mkdir(parents=True, exist_ok=True)
    if args.only:  # a child process: these teachers, one after another, on its device
        import torch.distributed as dist

        device = "cuda" if torch.cuda.is_available() and "cpu" not in entries else "cpu"
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import datetime

            # Rank 0 evaluates each teacher while the others wait at the next one's barrier.
            dist.init_process_group(
                "nccl" if device == "cuda" else "gloo", timeout=datetime.timedelta(hours=2)
            )
        try:
            for name in args.only:
                run_teacher(args, work, name, device)
        finally:
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
        return
    t0 = time.perf_counter()
    try:
        generate_data(args, work)
    except GS3DError as e:
        p.error(str(e))
    log(f"data ready ({time.perf_counter() - t0:.0f} s)")
    gpus = [] if entries[0] == "cpu" else entries
    vae = train_vae_stage(args, work, f"cuda:{gpus[0]}" if gpus else "cpu")
    from gs_core.devices import child_environment

    forwarded = [a for a in sys.argv[1:]]
    if args.data_parallel:
        chain = teacher_chains(1, args.priors)[0]
        children = [(chain, env) for env in data_parallel_environments(entries, _free_port())]
    else:
        chains = teacher_chains(len(gpus), args.priors)
        children = [
            (chain, child_environment(len(chains), gpus[k] if gpus else None))
            for k, chain in enumerate(chains)
        ]
    procs = []
    for chain, env in children:
        procs.append(
            subprocess.Popen([sys.executable, __file__, *forwarded, "--only", *chain], env=env)
        )
    codes = wait_all(procs, stop_on_failure=args.data_parallel)
    results = {}
    for name in args.priors:
        f = work / name / "result.json"
        results[name] = json.loads(f.read_text()) if f.exists() else {"error": "no result"}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.priors:
        packed = work / name / f"{name}.safetensors"
        if packed.exists():
            shutil.copy(packed, args.out / packed.name)
        if (work / name / "samples.png").exists():
            shutil.copy(work / name / "samples.png", args.out / f"{name}-samples.png")
    write_json(
        args.out / "results.json",
        {"vae": vae, "teachers": results, "exit_codes": codes, "seconds": time.perf_counter() - t0},
    )
    (args.out / "done").write_text("ok\n")
    log(f"done in {time.perf_counter() - t0:.0f} s, exit codes {codes}")


if __name__ == "__main__":
    main()
