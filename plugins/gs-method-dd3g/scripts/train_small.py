"""DD3G on the procedural world, in one command (the GPU proof of issue #19).

1. Student images: single input views of procedural objects generated with seed
   ``STUDENT_SEED`` (not the teacher's training objects, which come from the procedural
   ``ring24`` data of seed 0); only their first view is read - the student never sees
   ground-truth multi-view images.
2. Quadruples ``{N, C, II, OI}``: the procedural ImageDream teacher (``--teacher DIR``, loaded by
   ``ImageDreamGuidance.from_pretrained``), deterministic 50-step DDIM, in this run.
3. Variants at equal steps: Table III (PEPD with joint / ES only / IV only) and Table II's
   PD only (c) and PEPD (d), both with explicit supervision as in the paper's Fig. 6.
4. Evaluation on procedural-eval objects (eval seed; 24-view ring at elevation 0 so ring12 is
   available), ring12 targets relative to the input, predictions aligned to the input by the
   automatic azimuth search (gs_core.evaluation.alignment); PSNR / SSIM per variant.
5. ``--out``: ``results.json`` and each variant's fp16 checkpoint in shards <= 16 MiB.

    python plugins/gs-method-dd3g/scripts/train_small.py --teacher TEACHER_DIR --out OUT
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

STUDENT_SEED = 1919
VARIANTS = {
    # name: (generator, objective, table rows)
    "pepd_joint": ("pepd", "joint", ["III: joint", "II (d)"]),
    "pepd_es": ("pepd", "es", ["III: explicit supervision only", "II (d), ES"]),
    "pepd_iv": ("pepd", "iv", ["III: implicit verification only"]),
    "pd_es": ("pd", "es", ["II (c): PD only, ES"]),
    "splatter_es": ("splatter", "es", ["II (b): single-image splatter network, ES"]),
    "hybrid_es": ("hybrid", "es", ["II (a): TGS / AGG-like hybrid generator, ES"]),
}
MISSING_VARIANTS: dict[str, str] = {}


def _procedural(out: Path, objects: int, resolution: int, seed: int, split: str) -> Path:
    from gs_core.procedural.generator import ProceduralConfig, generate

    cfg = ProceduralConfig(
        objects=objects,
        views=24,
        resolution=resolution,
        seed=seed,
        camera_layout="ring24",
        elevation_range=(0.0, 0.0),
        points=0,
        depth=False,
        normals=False,
        split=split,
    )
    generate(cfg, out, overwrite=True, workers=0, progress=False)
    return out


def _objects(root: Path):
    from gs_core.data.layout import list_objects
    from gs_core.data.views import load_object_views

    for oid in list_objects(root):
        yield load_object_views(root / oid)


def _input_images(root: Path, size: int) -> torch.Tensor:
    ims = []
    for views in _objects(root):
        x = torch.from_numpy(views.rgba[0]).float().permute(2, 0, 1) / 255.0
        ims.append(
            torch.nn.functional.interpolate(
                x[None], (size, size), mode="bilinear", antialias=True, align_corners=False
            )[0]
        )
    return torch.stack(ims)


def _evaluate(model, root: Path, seeds: int) -> dict:
    from gs_core.evaluation.alignment import rotate_about_y, search_azimuth_offset
    from gs_core.evaluation.protocols import select_views
    from gs_core.metrics.psnr import psnr
    from gs_core.metrics.ssim import ssim
    from gs_core.rendering import render

    model.eval()
    rows = []
    for views in _objects(root):
        cams = views.cameras
        centers = torch.linalg.inv(cams.viewmats.double())[:, :3, 3].numpy()
        sel = select_views(centers, "ring12", input_index=0, object_id=views.object_id)
        rgba = torch.from_numpy(views.rgba).float() / 255.0
        gt = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        inp = rgba[0].permute(2, 0, 1)[None].to(model.device)
        for s in range(seeds):
            with torch.no_grad():
                g = model.generate(inp, seed=s, cuda_graph=False).gaussians
            # The prediction's frame: the input camera at azimuth 0 of the object frame.
            from gs_core.cameras import Cameras

            h = cams.height
            front = Cameras.orbit(
                [0.0],
                [0.0],
                radius=float(np.linalg.norm(centers[0])),
                fov_deg=model.config.fov_deg,
                width=h,
                height=h,
            )

            def render_fn(c, g=g):
                return render(g[0], c.to(model.device), background=1.0).rgb

            al = search_azimuth_offset(render_fn, front, gt[0].to(model.device))
            az_in = float(np.degrees(np.arctan2(centers[0, 0], centers[0, 2])))
            # targets relative to the input, in the prediction's frame, then the alignment
            tgt_idx = sel.groups["ring12"]
            rel = [
                float(np.degrees(np.arctan2(centers[i, 0], centers[i, 2]))) - az_in for i in tgt_idx
            ]
            tcams = Cameras.orbit(
                rel,
                0.0,
                radius=float(np.linalg.norm(centers[0])),
                fov_deg=model.config.fov_deg,
                width=h,
                height=h,
            )
            pred = render_fn(rotate_about_y(tcams, al.offset_deg)).float().cpu().clamp(0, 1)
            t = gt[tgt_idx]
            rows.append(
                {
                    "object": views.object_id,
                    "seed": s,
                    "offset_deg": al.offset_deg,
                    "psnr": float(psnr(pred, t).mean()),
                    "ssim": float(ssim(pred, t).mean()),
                }
            )
    return {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "ssim": float(np.mean([r["ssim"] for r in rows])),
        "objects": rows,
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="ImageDream checkpoint directory (teacher)")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="small", choices=["small", "tiny"])
    p.add_argument("--steps", type=int, default=None, help="steps per variant (default: preset)")
    p.add_argument("--student-images", type=int, default=512)
    p.add_argument("--eval-objects", type=int, default=24)
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--eval-seeds", type=int, default=1)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)

    from gs_core.io.atomic import atomic_write_text
    from gs_core.training import Trainer
    from gs_method_dd3g import DD3G, DD3GConfig
    from gs_method_dd3g.quadruples import generate_quadruples
    from gs_priors import ImageDreamGuidance

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    t0 = time.time()
    teacher = ImageDreamGuidance.from_pretrained(a.teacher, device=a.device)
    size = int(teacher.image_size)
    train_root = _procedural(work / "student", a.student_images, size, STUDENT_SEED, "train")
    images = _input_images(train_root, size)
    quads = generate_quadruples(
        teacher,
        images,
        steps=a.ddim_steps,
        generator=torch.Generator().manual_seed(0),
        batch_size=16,
    )
    from gs_core.procedural.generator import EVAL_SEED

    eval_root = _procedural(work / "eval", a.eval_objects, size, EVAL_SEED, "test")
    results = {
        "preset": a.preset,
        "teacher": str(a.teacher),
        "device": a.device,
        "quadruples": len(quads),
        "ddim_steps": a.ddim_steps,
        "protocol": "ring12+alignment",
        "student_seed": STUDENT_SEED,
        "eval_seed": EVAL_SEED,
        "variants": {},
        "missing": MISSING_VARIANTS,
    }
    for name in a.variants.split(","):
        generator, objective, rows = VARIANTS[name]
        base = DD3GConfig.preset(a.preset)
        steps = a.steps or base.train.max_steps
        cfg = DD3GConfig.preset(
            a.preset,
            generator=generator,
            objective=objective,
            latent_size=quads.noise.shape[-1],
            render_resolution=size,
            train={
                "max_steps": steps,
                "device": a.device,
                "checkpoint_every": steps,
                "progress": "off",
                "tensorboard": "off",
            },
        )
        torch.manual_seed(0)
        model = DD3G(cfg).to(a.device)
        t1 = time.time()
        Trainer(model.training_module(quadruples=quads, teacher=teacher), work / name).fit()
        train_s = time.time() - t1
        metrics = _evaluate(model, eval_root, a.eval_seeds)
        model.to(torch.float16).save_pretrained(
            out / "checkpoints" / name, overwrite=True, max_shard_bytes=16 * 2**20
        )
        results["variants"][name] = {
            "generator": generator,
            "objective": objective,
            "rows": rows,
            "steps": steps,
            "train_s": train_s,
            "psnr": metrics["psnr"],
            "ssim": metrics["ssim"],
            "per_object": metrics["objects"],
        }
        print(f"{name}: PSNR {metrics['psnr']:.2f} SSIM {metrics['ssim']:.3f} ({train_s:.0f} s)")
    v = results["variants"]
    if {"pepd_joint", "pepd_es", "pepd_iv"} <= set(v):
        results["table3_order_holds"] = (
            v["pepd_joint"]["psnr"] > v["pepd_es"]["psnr"] > v["pepd_iv"]["psnr"]
        )
    if {"pd_es", "pepd_es"} <= set(v):
        results["table2_pd_below_pepd"] = v["pd_es"]["psnr"] < v["pepd_es"]["psnr"]
    if {"splatter_es", "pd_es"} <= set(v):
        results["table2_splatter_below_pd"] = v["splatter_es"]["psnr"] < v["pd_es"]["psnr"]
    if {"hybrid_es", "splatter_es"} <= set(v):
        results["table2_hybrid_below_splatter"] = v["hybrid_es"]["psnr"] < v["splatter_es"]["psnr"]
    results["wall_s"] = time.time() - t0
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
