"""Compress3D training throughput: steps/s of each stage through the engine, and the share of
the steady-state wall time spent producing the batches.

    python3 -m gs_core.cli.main data procedural --objects 64 --views 24 --resolution 128 \
        --split train --out /tmp/c3d
    python3 benchmarks/compress3d_training.py --data /tmp/c3d --device cpu --steps 6 --skip 2
    python3 benchmarks/compress3d_training.py --data /tmp/c3d --device cuda --steps 60

The model is the ``small`` preset (``--preset``, ``--set KEY=VALUE`` overrides) with random
weights, trained stage after stage (``encoders``, ``autoencoder``, ``prior``, ``diffusion``) for
``--steps`` steps each. Rates are measured over steps ``--skip`` .. ``--steps`` (the first steps
start workers, decode or load the resident views and cache the frozen embeddings: ``first
steps s`` is the time until step ``--skip`` ends, from the start of ``fit``).

The data time is what the training process spends obtaining its batches: waiting on the
engine's batch stream (DataLoader workers) and moving the batch to the device, plus, for data
drawn on the device, the module's ``resident_batch`` (sampling the resident views and gathering
the cached embeddings); on CUDA each piece is timed between device synchronisations.

Prints a markdown table (``--json OUT`` also writes the numbers). ``--profile DIR`` records the
first ``--profile-steps`` timed steps of each stage (default 5) with ``torch.profiler`` and
writes ``DIR/<stage>.txt``: the operators by self device time (self CPU time on a CPU), then by
CPU time, with ``--trace`` also a Chrome trace (large: 18 MB for two CPU steps of the ``tiny``
preset). The rates of a profiled run include the profiler's overhead.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

STAGES = ("encoders", "autoencoder", "prior", "diffusion")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class DataClock:
    """Seconds spent producing batches since the last :meth:`reset`."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds = 0.0

    def reset(self) -> None:
        self.seconds = 0.0

    def timed(self, fn):
        def wrapper(*args, **kwargs):
            _sync(self.device)
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(self.device)
            self.seconds += time.perf_counter() - t0
            return out

        return wrapper


def timed_stream(clock: DataClock):
    """The engine's ``BatchStream`` with every ``next()`` timed on ``clock``."""
    from gs_core.training.data import BatchStream

    class TimedStream(BatchStream):
        def __iter__(self):
            it = super().__iter__()
            step = clock.timed(lambda: next(it))
            while True:
                yield step()

    return TimedStream


def build(preset: str, device: torch.device, sets: list[str], steps: int):
    from gs_method_compress3d.config import Compress3DConfig
    from gs_method_compress3d.model import Compress3D

    cfg = Compress3DConfig.preset(preset).with_overrides(
        {
            "train.trainer.device": str(device),
            "train.trainer.progress": "off",
            "train.trainer.tensorboard": "off",
            "train.trainer.checkpoint_every": 10**6,
        }
    )
    cfg = cfg.with_overrides(list(sets))
    steps_per_stage = {s: steps for s in STAGES}
    cfg = cfg.with_overrides({"train.stage_steps": steps_per_stage})
    torch.manual_seed(0)
    return Compress3D(cfg).to(device)


def _profiler(device: torch.device):
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    # No shapes: the 30 steps of one H200 run with them did not finish their tables in 120 s.
    return profile(activities=acts)


def write_profile(
    prof, device: torch.device, out: Path, stage: str, steps: int, trace: bool = False
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    own = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages()
    text = (
        f"{stage}: {steps} profiled steps\n\nby {own}\n"
        + table.table(sort_by=own, row_limit=40)
        + "\n\nby cpu_time_total\n"
        + table.table(sort_by="cpu_time_total", row_limit=25)
        + "\n"
    )
    (out / f"{stage}.txt").write_text(text)
    if trace:
        prof.export_chrome_trace(str(out / f"{stage}.trace.json"))


def time_stage(
    model,
    stage: str,
    data: Path,
    steps: int,
    skip: int,
    profile_dir: Path | None = None,
    trace: bool = False,
    profile_steps: int = 5,
) -> dict:
    """Steady-state rate and data share of one stage (steps ``skip`` .. ``steps``)."""
    import gs_core.training.trainer as engine
    from gs_core.training import Callback, Trainer

    device = model.device
    clock = DataClock(device)
    marks: dict[str, float] = {}
    prof = _profiler(device) if profile_dir is not None else None
    profile_stop = min(steps, skip + profile_steps)

    class Clock(Callback):
        def on_fit_start(self, trainer):
            marks["start"] = time.perf_counter()

        def on_step_end(self, trainer, step, logs):
            if step in (skip, steps):
                _sync(device)
                marks[step] = time.perf_counter()
                marks[f"data{step}"] = clock.seconds
            if prof is not None and step == skip:
                prof.start()
            elif prof is not None and step == profile_stop:
                _sync(device)
                prof.stop()

    module = model.training_module(stage, data_dir=data)
    if hasattr(module, "resident_batch"):
        module.resident_batch = clock.timed(module.resident_batch)
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(engine, "BatchStream", timed_stream(clock)),
        mock.patch.object(engine, "to_device", clock.timed(engine.to_device)),
    ):
        Trainer(module, Path(tmp) / "run", callbacks=[Clock()]).fit()
    if prof is not None:
        write_profile(prof, device, profile_dir, stage, profile_stop - skip, trace)
    wall = marks[steps] - marks[skip]
    data_s = marks[f"data{steps}"] - marks[f"data{skip}"]
    batch = module.trainer_config().batch_size
    return {
        "batch": batch,
        "steps_s": (steps - skip) / wall,
        "samples_s": (steps - skip) * batch / wall,
        "data_share": data_s / wall,
        "first_steps_s": marks[skip] - marks["start"],
        "workers": engine._worker_count(module.trainer_config().num_workers, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="a gs3d data procedural dataset")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=60, help="steps per stage")
    ap.add_argument("--skip", type=int, default=None, help="steps before timing (default: 1/6)")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides KEY=VALUE")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU default: 2)")
    ap.add_argument("--label", default="", help="a name for this run in the table")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--profile", type=Path, default=None, help="write profiles to this folder")
    ap.add_argument("--trace", action="store_true", help="with --profile: Chrome traces too")
    ap.add_argument(
        "--profile-steps", type=int, default=5, help="with --profile: steps recorded from --skip"
    )
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    threads = args.threads or (2 if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    skip = args.skip if args.skip is not None else max(1, args.steps // 6)
    if not 1 <= skip < args.steps:
        ap.error(f"--skip must be in [1, --steps); got {skip} with --steps {args.steps}")
    model = build(args.preset, device, args.set, args.steps)
    results = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "skip": skip,
        "stages": {},
    }
    for stage in args.stages.split(","):
        r = time_stage(
            model, stage, args.data, args.steps, skip, args.profile, args.trace, args.profile_steps
        )
        results["stages"][stage] = r
        print(f"{stage}: {r}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n{args.label} ({results['device']}, {results['threads']} threads)".strip())
    print("| stage | batch | steps/s | samples/s | data share | first steps s | workers |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for stage, r in results["stages"].items():
        print(
            f"| {stage} | {r['batch']} | {r['steps_s']:.3f} | {r['samples_s']:.1f} | "
            f"{100 * r['data_share']:.0f}% | {r['first_steps_s']:.1f} | {r['workers']} |"
        )
    return results


if __name__ == "__main__":
    main()
