"""Has a teacher learned its condition or memorised its training objects? A CPU check, no
sampling: the denoising error with the input's condition against the null condition, per
timestep, on objects it trained on and on the held-out ``eval-hard`` objects the usefulness
checks score (:mod:`gs_priors.teachers.condition_use`).

A teacher that generalises is helped by its condition on both. One that memorised is helped on
its training objects only: on unseen ones its conditional prediction is worse than the
unconditional one at some timesteps, and guidance, which extrapolates along their difference,
makes its samples worse (the twenty-second Zero123++ pack: gs-priors docs/teacher-runs.md).

    python3 packages/gs-priors/scripts/condition_use.py --pack .teacher/zero123plus.safetensors \\
        --prior zero123plus --work /tmp/cu --out condition-use.json
"""

from __future__ import annotations

import json
import sys
import time

import torch


def main(argv: list[str] | None = None) -> dict:
    from gs_priors.teachers.probe_arguments import check_probe_paths, probe_parser

    p = probe_parser(
        __doc__.splitlines()[0], "where the two datasets are made", "objects per split"
    )
    p.add_argument(
        "--timesteps", default="50,150,300,500,700,900", help="comma-separated timesteps"
    )
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from gs_core.io.atomic import atomic_write_text

    try:
        timesteps = tuple(int(t) for t in a.timesteps.split(","))
    except ValueError:
        p.error(f"--timesteps: comma-separated integers expected, got {a.timesteps!r}")
    check_probe_paths(p, a)

    from gs_core.procedural.generator import generate
    from gs_priors.teachers import ViewBank, load_teacher
    from gs_priors.teachers.condition_use import (
        condition_use_record,
        condition_use_split,
        lowest_gain,
    )
    from gs_priors.teachers.data import BATCHES, probe_dataset_config

    prior = load_teacher(a.pack)
    resolution = int(prior.image_size)
    configs = {
        split: probe_dataset_config(a.prior, split, resolution, a.objects)
        for split in ("train", "unseen")
    }
    t0 = time.perf_counter()
    batches = {}
    for split, cfg in configs.items():
        folder = a.work / f"{a.prior}-{split}-{a.objects}"
        if not (folder / "dataset.json").exists():
            generate(cfg, folder, workers=a.threads, progress=False)
        bank = ViewBank.load(folder, resolution, "cpu")
        gen = torch.Generator().manual_seed(a.seed)
        batches[split] = BATCHES[a.prior](bank, a.objects, gen)
    result = condition_use_split(prior, a.prior, batches, timesteps, a.seed)
    print(f"{a.prior}: {a.pack} ({time.perf_counter() - t0:.0f} s)")
    print("split   t     x0 MSE conditional / unconditional   condition better")
    for split, rows in result.items():
        for t, row in rows.items():
            print(
                f"{split:7s} {t:4d}  {row['conditional']:.4f} / {row['unconditional']:.4f}"
                f"   {row['condition_better']:.0%}"
            )
        t, gain = lowest_gain(rows)
        print(f"{split:7s} least gain from the condition: {gain:+.2f} dB at t = {t}")
    record = {
        "pack": str(a.pack),
        "prior": a.prior,
        "objects": a.objects,
        "seed": a.seed,
        "timesteps": list(timesteps),
        **condition_use_record(result),
    }
    if a.out is not None:
        atomic_write_text(a.out, json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
