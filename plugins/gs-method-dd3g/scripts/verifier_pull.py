"""Where DD3G's implicit verification pulls an image: towards the truth or away from it.

L_IV (Eq. 5) is the teacher's SDS on renders at random views. A verifier helps only if its
expected gradient points from a student's imperfect render towards the truth, and stays small
at the truth itself. This measures both without training a student. The images are
procedural-eval ground truth at the verifier's cameras (four views 90 degrees apart, first
azimuth a multiple of 15 degrees, pitch 0, so that the 24-view ring holds every view). Each
image is checked in three versions:

- ``truth``: the ground truth itself;
- ``blurred``: the ground truth under a Gaussian blur (``--blur-px``), a stand-in for a
  student's soft renders;
- ``input copied``: the input image shown at all four views, the no-3D answer;
- ``teacher sample`` (white only): the teacher's own deterministic DDIM sample at those cameras
  (``--ddim-steps``, the quadruples' guidance 5), which is what L_ES (Eq. 3-4) trains the
  student to render. Its cosine says whether the verifier corrects the teacher's single
  samples towards the truth, which is what the paper adds L_IV for.

Each version is checked on white, the teacher's own background, and on Eq. 8's random
backgrounds (``iv_random_background``), with the truth composited on the same colour
(``--backgrounds`` picks). Per row, over ``--draws`` draws of ``t`` and noise per object, the
script reports:

- the RMS of the mean gradient per pixel (x 255, at weight 1);
- ``toward truth``: the cosine between minus that gradient and (truth - image). Above 0 means
  the verifier pulls the image towards the truth; the truth's own row has none;
- ``signal / bias``: RMS x cosine (the part of the pull that points at the truth) over the
  RMS of the pull at the truth itself, which a perfect verifier makes 0. Below 1 the verifier
  pushes a student that has reached the truth harder than it pulls one that has not.

    python3 plugins/gs-method-dd3g/scripts/verifier_pull.py --teacher .teacher/imagedream.safetensors \
        [--objects 8] [--draws 8] [--json pull.json] [--set iv_guidance_scale=5] [--backgrounds white]

The verifier's settings are the ``small`` preset's (guidance, t range, weighting, reduction),
changed by ``--set``. Since session 50 that preset's guidance is 1 (sessions 47-49 measured at
5: ``--set iv_guidance_scale=5`` repeats them). A few minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

VERSIONS = ("truth", "blurred", "input copied", "teacher sample")
BACKGROUNDS = ("white", "random")
# The teacher draws its samples on white (ImageDream composites on white): no random rows.
WHITE_ONLY = ("teacher sample",)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="ImageDream pack or directory")
    p.add_argument("--preset", default="small")
    p.add_argument("--objects", type=int, default=8, help="procedural-eval objects")
    p.add_argument("--draws", type=int, default=8, help="draws of t and noise per image")
    p.add_argument("--blur-px", type=float, default=2.0, help="sigma of the blurred version")
    p.add_argument(
        "--backgrounds", default="white,random", help="comma-separated: white, random (Eq. 8)"
    )
    p.add_argument(
        "--ddim-steps", type=int, default=50, help="steps of the teacher sample (IV-A: 50)"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    return p


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x [..., C, H, W]`` blurred by a separable Gaussian of ``sigma`` px (edges replicated)."""
    r = max(1, int(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype) / sigma) ** 2)
    k = (k / k.sum()).to(x.device)
    shape = x.shape
    y = x.reshape(-1, 1, *shape[-2:])
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(shape)


def mean_gradient(sds, image: torch.Tensor, cond, draws: int, seed: int) -> torch.Tensor:
    """The verifier's gradient on ``image [1, V, 3, H, W]``, averaged over ``draws`` draws."""
    total = torch.zeros_like(image)
    gen = torch.Generator(image.device).manual_seed(seed)
    for _ in range(draws):
        x = image.clone().requires_grad_(True)
        loss = sds(x, cond, generator=gen, step_ratio=0.5)["sds"]
        (g,) = torch.autograd.grad(loss, x)
        total += g
    return total / draws


def pull(gradient: torch.Tensor, image: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """The RMS of ``gradient`` per pixel (x 255) and its cosine towards ``truth`` from
    ``image`` (None where the image is the truth)."""
    rms = float(gradient.pow(2).mean().sqrt() * 255.0)
    gap = (truth - image).flatten()
    if float(gap.norm()) == 0.0:
        return {"rms_x255": rms, "toward_truth": None}
    cos = F.cosine_similarity(-gradient.flatten(), gap, dim=0)
    return {"rms_x255": rms, "toward_truth": float(cos)}


def signal_to_bias(row: dict, truth_row: dict) -> float | None:
    """The part of a version's pull that points at the truth (RMS x cosine) over the pull at
    the truth; None for the truth's own row."""
    if row["toward_truth"] is None:
        return None
    return row["rms_x255"] * row["toward_truth"] / max(truth_row["rms_x255"], 1e-12)


@torch.no_grad()
def latent_shape(teacher) -> tuple[int, ...]:
    """``(C, h, w)`` of one view's latent (probed once, as ``generate_quadruples`` does)."""
    size = int(teacher.image_size)
    return tuple(
        teacher.encode_images(torch.ones(1, 3, size, size, device=teacher.device)).shape[1:]
    )


@torch.no_grad()
def teacher_sample(teacher, cond, shape: tuple[int, ...], steps: int, guidance: float, seed: int):
    """The teacher's deterministic DDIM sample ``[1, V, 3, H, W]`` in [0, 1] for ``cond`` (one
    object's ``V`` cameras; ``shape`` is ``(V, C, h, w)``), from noise drawn with ``seed``."""
    from gs_priors.samplers import sample

    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    res = sample(
        teacher,
        cond,
        shape,
        sampler="ddim",
        steps=steps,
        guidance_scale=guidance,
        noise=noise.to(teacher.device),
    )
    return teacher.decode_latents(res.latents).clamp(0, 1).float()[None]


def main(argv: list[str] | None = None) -> dict:
    a = _parser().parse_args(argv)
    from gs_core.io.atomic import atomic_write_text, check_overwrite
    from gs_core.metrics.psnr import psnr
    from gs_core.procedural.generator import EVAL_SEED
    from gs_method_dd3g import DD3GConfig
    from gs_method_dd3g.cameras import orbit_views, random_background
    from gs_method_dd3g.implicit_verification import verification_sds
    from gs_method_dd3g.procedural_evaluation import make_objects, object_views
    from gs_priors import ImageDreamGuidance

    if a.json is not None:
        check_overwrite(a.json, a.overwrite, directory=False)
    if a.objects < 1 or a.draws < 1 or a.ddim_steps < 1:
        raise SystemExit("--objects, --draws and --ddim-steps: at least 1")
    backgrounds = [b for b in a.backgrounds.split(",") if b]
    if not backgrounds or any(b not in BACKGROUNDS for b in backgrounds):
        raise SystemExit(
            f"--backgrounds: expected some of {', '.join(BACKGROUNDS)}, got {a.backgrounds!r}"
        )
    t0 = time.time()
    cfg = DD3GConfig.preset(a.preset).with_overrides(list(a.set))
    teacher = ImageDreamGuidance.from_pretrained(a.teacher, device=a.device)
    sds = verification_sds(teacher, cfg)
    size = int(teacher.image_size)
    view_latent = latent_shape(teacher)
    rows: dict[str, dict[str, list[dict]]] = {
        b: {v: [] for v in VERSIONS if b == "white" or v not in WHITE_ONLY} for b in backgrounds
    }
    sample_psnr: list[float] = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_objects(Path(tmp) / "eval", a.objects, size, EVAL_SEED, "test")
        for n, views in enumerate(object_views(root)):
            centers = torch.linalg.inv(views.cameras.viewmats.double())[:, :3, 3].numpy()
            ring_az = np.degrees(np.arctan2(centers[:, 0], centers[:, 2]))
            rel = (ring_az - ring_az[0]) % 360.0
            radius = float(np.linalg.norm(centers[0]))
            first = 15.0 * int(rng.integers(0, 6))
            az = [(first + 90.0 * k) % 360.0 for k in range(cfg.num_views)]
            idx = [int(np.argmin(np.abs((rel - z + 180.0) % 360.0 - 180.0))) for z in az]
            rgba = torch.from_numpy(views.rgba).float().div(255.0).permute(0, 3, 1, 2)
            rgba = rgba.to(a.device)
            cams = orbit_views(
                torch.tensor([az]), torch.zeros(1, len(az)), radius, cfg.fov_deg, size, a.device
            )
            with torch.no_grad():
                # The reference latent is a VAE posterior draw: seeded per object, so that runs
                # with other verifier settings condition (and sample) on the same one.
                ref = teacher.encode_reference(rgba[:1], generator=torch.Generator().manual_seed(n))
                cond = teacher.condition(ref, cams)
            sampled = None
            if "white" in backgrounds:
                shape = (len(idx), *view_latent)
                sampled = teacher_sample(teacher, cond, shape, a.ddim_steps, 5.0, seed=n)
            for background in backgrounds:
                if background == "white":
                    bg = torch.ones(3, 1, 1, device=a.device)
                else:
                    gen = torch.Generator().manual_seed(1000 + n)
                    bg = random_background((3,), gen).to(a.device).view(3, 1, 1)
                shown = rgba[:, :3] * rgba[:, 3:] + bg * (1 - rgba[:, 3:])
                truth = shown[idx][None]  # [1, V, 3, H, W]
                images = {
                    "truth": truth,
                    "blurred": gaussian_blur(truth, a.blur_px),
                    "input copied": shown[:1].expand(len(idx), -1, -1, -1)[None],
                }
                if background == "white":
                    images["teacher sample"] = sampled
                    sample_psnr.append(float(psnr(sampled, truth)))
                for version, image in images.items():
                    g = mean_gradient(sds, image, cond, a.draws, seed=n)
                    r = pull(g, image, truth)
                    rows[background][version].append({"object": views.object_id, **r})
            print(f"{views.object_id}: done ({time.time() - t0:.0f} s)", flush=True)
    summary = {
        b: {
            v: {
                "rms_x255": float(np.mean([r["rms_x255"] for r in rs])),
                "toward_truth": None
                if v == "truth"
                else float(np.mean([r["toward_truth"] for r in rs])),
                "per_object": rs,
            }
            for v, rs in by_version.items()
        }
        for b, by_version in rows.items()
    }
    for by_version in summary.values():
        for row in by_version.values():
            row["signal_to_bias"] = signal_to_bias(row, by_version["truth"])
    print(
        "| background | image | RMS of the mean gradient x255 | cosine toward the truth | signal / bias |"
    )
    print("| --- | --- | ---: | ---: | ---: |")
    for b, by_version in summary.items():
        for v, row in by_version.items():
            cos = "" if row["toward_truth"] is None else f"{row['toward_truth']:+.3f}"
            sb = "" if row["signal_to_bias"] is None else f"{row['signal_to_bias']:.2f}"
            print(f"| {b} | {v} | {row['rms_x255']:.5f} | {cos} | {sb} |")
    if sample_psnr:
        print(f"teacher samples against the truth: PSNR {np.mean(sample_psnr):.2f} dB")
    result = {
        "teacher": str(a.teacher),
        "preset": a.preset,
        "overrides": list(a.set),
        "verifier": {
            "guidance_scale": cfg.iv_guidance_scale,
            "t_range": list(cfg.iv_t_range),
            "weighting": cfg.iv_weighting,
            "reduction": cfg.iv_reduction,
        },
        "objects": a.objects,
        "draws": a.draws,
        "blur_px": a.blur_px,
        "ddim_steps": a.ddim_steps,
        "teacher_sample_psnr": float(np.mean(sample_psnr)) if sample_psnr else None,
        "rows": summary,
        "seconds": time.time() - t0,
    }
    if a.json is not None:
        atomic_write_text(a.json, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
