"""What guidance does to a teacher's samples on held-out objects: PSNR, latent error against the
truth's latents, and the object's colourfulness and brightness against the truth's, per
guidance scale, optionally applied over an interval of timesteps only
(:mod:`gs_priors.teachers.guidance_effect`). A CPU diagnosis: 16 objects take about 1.5 minutes
per entry on 2 cores for Zero123++, 3.5 for ImageDream, 0.5 for Zero123.

    python3 packages/gs-priors/scripts/guidance_effect.py --pack .teacher/zero123plus.safetensors \\
        --prior zero123plus --work /tmp/ge --entries 1,4,4@500-1000,4@0-500 --out effect.json
"""

from __future__ import annotations

import json
import sys
import time

import torch


def main(argv: list[str] | None = None) -> dict:
    from gs_priors.teachers.probe_arguments import check_probe_paths, probe_parser

    p = probe_parser(
        __doc__.splitlines()[0], "where the held-out objects are made", "held-out objects"
    )
    p.add_argument(
        "--entries",
        default="1,4",
        help="comma-separated guidance entries: a scale, or scale@lo-hi to guide only where "
        "lo <= t < hi (scale 1 elsewhere)",
    )
    p.add_argument("--steps", type=int, default=50, help="DDIM steps")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from gs_core.errors import GS3DError
    from gs_core.io.atomic import atomic_write_text
    from gs_priors.teachers.guidance_effect import describe, guidance_effect, parse_entry

    try:
        entries = [parse_entry(e.strip()) for e in a.entries.split(",") if e.strip()]
    except GS3DError as e:
        p.error(f"--entries: {e}")
    if not entries:
        p.error("--entries: at least one entry expected")
    check_probe_paths(p, a)

    from gs_core.procedural.generator import generate
    from gs_priors.teachers import ViewBank, load_teacher
    from gs_priors.teachers.data import BATCHES, probe_dataset_config

    prior = load_teacher(a.pack)
    resolution = int(prior.image_size)
    folder = a.work / f"{a.prior}-unseen-{a.objects}"
    if not (folder / "dataset.json").exists():
        cfg = probe_dataset_config(a.prior, "unseen", resolution, a.objects)
        generate(cfg, folder, workers=a.threads, progress=False)
    bank = ViewBank.load(folder, resolution, "cpu")
    batch = BATCHES[a.prior](bank, a.objects, torch.Generator().manual_seed(a.seed))
    t0 = time.perf_counter()
    result = guidance_effect(prior, a.prior, batch, entries, a.steps, a.seed)
    truth = result["truth"]
    print(f"{a.prior}: {a.pack}, {a.objects} held-out objects ({time.perf_counter() - t0:.0f} s)")
    print(
        f"truth: object chroma {truth['chroma']:.3f}, luminance {truth['luminance']:.3f}; "
        f"its latents decoded: {truth['vae_psnr']:.2f} dB"
    )
    for e in result["entries"]:
        print(
            f"{describe(e):34s} PSNR {e['psnr']:.2f}  latent MSE {e['latent_mse']:.4f}  "
            f"chroma {e['chroma']:.3f}  luminance {e['luminance']:.3f}"
        )
    record = {
        "pack": str(a.pack),
        "prior": a.prior,
        "objects": a.objects,
        "steps": a.steps,
        "seed": a.seed,
        **result,
    }
    if a.out is not None:
        atomic_write_text(a.out, json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
