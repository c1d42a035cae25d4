"""Can a teacher's camera pathway be learned, and how fast? A CPU check on a task where the
camera decides everything.

A small Zero123 teacher (the real classes, the VAE of a packed teacher) is trained on procedural
views where the target of ``d_azimuth = +90`` is the input mirrored left-right and the target of
``-90`` the input mirrored top-bottom. Every ``--probe-every`` seconds it prints
:func:`gs_priors.teachers.camera_gap` on a fixed batch: the implied-x0 error with the true and the
mirrored cameras, and the share of rows where the true camera does better. A pathway that works
moves that share from 0.5 to 1.

    python3 packages/gs-priors/scripts/camera_toy.py --teacher OUT/zero123.safetensors \\
        --weighting v --seconds 900

(the teacher file only lends its VAE; ``gs3d data procedural`` views are generated into
``--work``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def toy_batch(bank, b: int, generator: torch.Generator):
    """Random views as inputs; targets mirrored left-right (+90) or top-bottom (-90)."""
    from gs_priors.teachers.data import Zero123Batch

    dev = bank.rgba.device
    obj = torch.randint(bank.num_objects, (b,), generator=generator, device=dev)
    src = torch.randint(bank.views_per_object, (b,), generator=generator, device=dev)
    inputs = bank.images(obj, src)
    sign = torch.randint(2, (b,), generator=generator, device=dev) * 2 - 1
    targets = torch.where((sign > 0).view(-1, 1, 1, 1), inputs.flip(-1), inputs.flip(-2))
    zero = torch.zeros(b, device=dev)
    return Zero123Batch(inputs, targets, zero, 90.0 * sign.float(), obj, src, src)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", type=Path, required=True, help="a packed teacher (for its VAE)")
    p.add_argument("--work", type=Path, default=Path("camera-toy"))
    p.add_argument("--weighting", choices=("uniform", "v"), default="v")
    p.add_argument("--seconds", type=float, default=900.0)
    p.add_argument("--probe-every", type=float, default=120.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TeacherConfig field, e.g. reference_dropout=0 (repeatable)",
    )
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from gs_core.procedural.generator import ProceduralConfig, generate
    from gs_priors.teachers import (
        TeacherConfig,
        TeacherTrainer,
        ViewBank,
        camera_gap,
        load_teacher,
        write_teacher,
    )
    from gs_priors.teachers import training as teacher_training
    from gs_priors.teachers.packing import unpack_teacher

    a.work.mkdir(parents=True, exist_ok=True)
    data = a.work / "views"
    if not (data / "dataset.json").exists():
        generate(
            ProceduralConfig(objects=40, views=12, seed=1001, split="train", resolution=32,
                             camera_layout="random", asymmetric=True, points=0, depth=False,
                             normals=False),
            data, workers=1, progress=False,
        )  # fmt: skip
    source = unpack_teacher(a.teacher, a.work / "source")
    cfg = TeacherConfig.preset("zero123").model_copy(
        update={
            "resolution": 32, "unet_channels": [32, 64], "unet_layers": 1, "head_channels": 16,
            "context_dim": 64, "encoder_width": 64, "encoder_layers": 1,
            "encoder_image_size": 32, "groups": 8, "batch_size": 32, "warmup_steps": 20,
            "loss_weighting": a.weighting,
        }
    )  # fmt: skip
    if a.set:
        cfg = cfg.with_overrides(list(a.set))
    name = a.weighting + "".join(f"-{kv}" for kv in a.set)
    prior = load_teacher(write_teacher(cfg, a.work / name, source / "vae"), device=a.device)
    bank = ViewBank.load(data, cfg.resolution, a.device)
    # The trainer draws its batches from the toy task (the real classes and loss otherwise).
    teacher_training.BATCHES["zero123"] = toy_batch
    trainer = TeacherTrainer(prior, cfg, bank, seed=0, cache_latents=False)
    probe = toy_batch(bank, 64, torch.Generator(a.device).manual_seed(99))
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < a.seconds:
        trainer.train(seconds=a.probe_every, log=lambda m: None, log_every=10**9)
        for m in trainer.modules.values():
            m.eval()
        gap = camera_gap(prior, "zero123", probe)
        for m in trainer.modules.values():
            m.train()
        row = {"steps": trainer.step_count, "seconds": round(time.perf_counter() - t0), "gap": gap}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
