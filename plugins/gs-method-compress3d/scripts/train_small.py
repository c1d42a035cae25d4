"""Train and measure Compress3D on the procedural world, stage by stage, in one command.

    python plugins/gs-method-compress3d/scripts/train_small.py --out runs/compress3d --gpus 0,1

Stages (each with a measured check, all written to ``OUT/results.json``):

1. data: ``gs3d data procedural`` writes the training set and ``--preset eval``
   (``procedural-eval``) unless ``--data`` / ``--eval-data`` are given;
2. ``encoders``: the procedural contrastive encoders; image-to-shape top-1 retrieval on the
   held-out objects (chance = 1 / objects);
3. ``autoencoder`` with and without 3D-aware cross-attention (Table 2; the two variants run on
   two GPUs at once with ``--gpus 0,1``): RGB PSNR and L_rgb, mask IoU and L_mask, depth error,
   Chamfer and volume IoU of the reconstructed meshes against the exact procedural geometry;
4. ``prior`` (on the attention autoencoder): shape retrieval from prior-predicted shape
   embeddings against retrieval from the image embeddings themselves;
5. ``diffusion`` with and without the prior (Table 4, two GPUs): generation on the held-out
   objects over ``--seeds`` seeds: PSNR, mask IoU, Chamfer / F-score against exact geometry,
   a "procedural Fréchet distance" (Fréchet distance in the procedural image encoder's feature
   space; not FID) and the procedural-encoder similarity of renders (not CLIP similarity);
   beside them, the same PSNR and mask IoU of two no-3D references on the same targets (the
   blank background, the input copied to every target).

The final models are written as fp16 safetensors shards of at most 16 MiB
(``OUT/model-attention-prior`` ...). ``--preset tiny`` runs the whole pipeline on a CPU in
seconds (the plugin's tests do).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from gs_core.training.stage_budgets import stage_budget_arg

SHARD_BYTES = 16 * 1024 * 1024
# Scores use every view of a held-out object but the input one (the paper renders 40 random
# views; procedural-eval has 16 per object).
EVAL_VIEWS = -1
STAGES = ("encoders", "autoencoder", "prior", "diffusion")
PRIOR_SEEDS = 3  # noise seeds of the prior's retrieval samples
CURVE_POINTS = 40  # logged steps kept per training run in results.json


# ------------------------------------------------------------------ data
def make_data(out: Path, preset: str, objects: int | None) -> tuple[Path, Path]:
    """``gs3d data procedural`` for training and held-out evaluation sets."""
    train, evald = out / "data" / "train", out / "data" / "procedural-eval"
    cli = [sys.executable, "-m", "gs_core.cli.main", "data", "procedural", "--quiet"]
    if not (train / "dataset.json").is_file():
        size = ["--objects", str(objects or 4000), "--views", "24", "--resolution", "128"]
        if preset == "tiny":
            size = ["--objects", str(objects or 6), "--views", "4", "--resolution", "32"]
        subprocess.run([*cli, *size, "--split", "train", "--out", str(train)], check=True)
    if not (evald / "dataset.json").is_file():
        which = ["--preset", "eval"]  # procedural-eval as published (its split is "test")
        if preset == "tiny":
            which = ["--objects", "4", "--views", "4", "--resolution", "32", "--seed", "20251121"]
            which += ["--split", "test"]
        subprocess.run([*cli, *which, "--out", str(evald)], check=True)
    return train, evald


def make_gallery(out: Path, preset: str, objects: int) -> Path:
    """A larger held-out set for retrieval only (``procedural-eval``'s 24 objects saturate it):
    ``objects`` new objects of another seed, two views each."""
    root = out / "data" / "retrieval"
    if not (root / "dataset.json").is_file():
        res = "32" if preset == "tiny" else "128"
        subprocess.run(
            [
                sys.executable, "-m", "gs_core.cli.main", "data", "procedural", "--quiet",
                "--objects", str(objects), "--views", "2", "--resolution", res,
                "--split", "test", "--seed", "20251201", "--out", str(root),
            ],
            check=True,
        )  # fmt: skip
    return root


def eval_split(root: Path) -> str:
    from gs_core.data import available_splits

    splits = available_splits(root)
    return "test" if "test" in splits else (splits[0] if splits else "all")


# ------------------------------------------------------------------ model plumbing
def build(preset: str, overrides: list[str] | dict[str, Any], device: str):
    from gs_method_compress3d.config import Compress3DConfig
    from gs_method_compress3d.model import Compress3D

    cfg = Compress3DConfig.preset(preset).with_overrides(overrides)
    cfg = cfg.with_overrides({"train.trainer.device": device})
    torch.manual_seed(0)
    return Compress3D(cfg).to(device)


def load(path: Path, device: str, overrides: dict[str, Any] | None = None):
    from gs_method_compress3d.model import Compress3D

    model = Compress3D.from_pretrained(path).float()
    cfg = model.config.with_overrides({**(overrides or {}), "train.trainer.device": device})
    fresh = Compress3D(cfg)
    # strict=False: the "w/o attention" variant drops the attention's weights
    fresh.load_state_dict(model.state_dict(), strict=False)
    return fresh.to(device)


def train_stage(model, stage: str, data: Path, run: Path, budget_s: float | None) -> dict:
    from gs_core.training import Trainer

    module = model.training_module(stage, data_dir=data)
    t0 = time.perf_counter()
    result = Trainer(module, run, budget_s=budget_s).fit().raise_if_signalled()
    return {
        "steps": result.step,
        "seconds": round(time.perf_counter() - t0, 2),
        "final_metrics": {k: float(v) for k, v in result.metrics.items()},
        "curve": loss_curve(run / "logs" / "metrics.jsonl"),
    }


def loss_curve(path: Path, points: int = CURVE_POINTS) -> dict[str, list]:
    """The run's logged losses (``loss*`` keys of the engine's ``metrics.jsonl``) at about
    ``points`` evenly spaced logged steps, under ``step`` and each key: small enough for
    ``results.json``, enough to see when two seeds' runs part ways."""
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "step" in r and any(k.startswith("loss") for k in r)]
    if not rows:
        return {}
    stride = max(1, -(-len(rows) // points))
    picked = rows[stride - 1 :: stride]
    if picked[-1] is not rows[-1]:
        picked.append(rows[-1])
    keys = sorted({k for r in picked for k in r if k.startswith("loss")})
    curve: dict[str, list] = {"step": [int(r["step"]) for r in picked]}
    for k in keys:  # None where a row lacks the key or is not finite: strict JSON
        curve[k] = [_finite_or_none(r.get(k)) for r in picked]
    return curve


def _finite_or_none(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    return float(value) if ok else None


def eval_samples(model, root: Path, views: int, resolution: int, points: int) -> list[dict]:
    from gs_core.data import MultiViewConfig, MultiViewDataset

    mv = MultiViewConfig(
        resolution=resolution,
        num_target_views=views,
        input_view="first",
        background="white",
        space="world",
        load_depth=True,
        load_points=True,
        num_points=points,
        seed=0,
    )
    ds = MultiViewDataset(root, eval_split(root), mv)
    return [ds[i] for i in range(len(ds))]


def to_device(item: dict, device: str) -> dict:
    return {k: (v.unsqueeze(0).to(device) if torch.is_tensor(v) else [v]) for k, v in item.items()}


def mesh_images(mesh, item: dict, device: str, surface_color=None) -> dict[str, torch.Tensor]:
    from gs_core.data import batch_cameras
    from gs_core.rendering import render_mesh

    cams = batch_cameras(to_device(item, device), "target")
    cams = type(cams)(
        viewmats=cams.viewmats[0], Ks=cams.Ks[0], width=cams.width, height=cams.height
    )
    r = render_mesh(
        mesh,
        cams,
        background=1.0,
        attributes=("rgb", "alpha", "depth"),
        surface_color=surface_color,
    )
    return {"rgb": r.rgb, "alpha": r.alpha, "depth": r.depth}


def image_scores(images: dict, item: dict, device: str) -> dict[str, float]:
    gt_rgb = item["target_rgb"].to(device)
    gt_a = item["target_alpha"].to(device)
    gt_d = item["target_depth"].to(device)
    mse = (images["rgb"] - gt_rgb).pow(2).mean()
    pm, gm = images["alpha"] > 0.5, gt_a > 0.5
    union = (pm | gm).sum().clamp_min(1)
    both = (pm | gm).float()
    return {
        "psnr": float(-10 * torch.log10(mse.clamp_min(1e-10))),
        "l_rgb": float(mse),
        "l_mask": float((images["alpha"] - gt_a).pow(2).mean()),
        "mask_iou": float((pm & gm).sum() / union),
        "l_depth": float(((images["depth"] - gt_d).pow(2) * both).sum() / both.sum().clamp_min(1)),
    }


def reference_scores(item: dict, device: str) -> dict[str, dict[str, float]]:
    """The no-3D references of ``gs_core.evaluation.references`` scored on a held-out item's
    targets as :func:`image_scores` scores a generation (PSNR of the mean squared error over
    the targets, mask IoU): ``blank``, the background alone; ``input_copied``, the input image
    and its silhouette at every target. A generation has learnt the unseen sides only above
    the copy."""
    gt = item["target_rgb"].to(device)
    gt_a = item["target_alpha"].to(device)
    inp_rgb = item["input_rgb"].to(device).permute(1, 2, 0)  # [H, W, 3]
    inp_a = item["input_rgba"][3:].to(device).permute(1, 2, 0)  # [H, W, 1]
    depth = torch.zeros_like(item["target_depth"]).to(device)
    background = item["background"].to(device=device, dtype=gt.dtype)
    refs = {
        "blank": {"rgb": background.expand_as(gt), "alpha": torch.zeros_like(gt_a)},
        "input_copied": {"rgb": inp_rgb.expand_as(gt), "alpha": inp_a.expand_as(gt_a)},
    }
    return {
        name: {
            k: v
            for k, v in image_scores({**r, "depth": depth}, item, device).items()
            if k in ("psnr", "mask_iou")
        }
        for name, r in refs.items()
    }


def geometry_scores(mesh, root: Path, object_id: str, iou_resolution: int) -> dict[str, float]:
    from gs_core.evaluation.geometry import mesh_geometry_scores
    from gs_core.procedural.surface import procedural_reference

    ref = procedural_reference(root / object_id, points=4096)
    s = mesh_geometry_scores(mesh, ref, samples=4096, iou_resolution=iou_resolution)
    return {k: float(v) for k, v in s.items()}


def mean_dict(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys() if rows else []
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


def mean_nested(rows: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {name: mean_dict([r[name] for r in rows]) for name in (rows[0] if rows else {})}


def save_fp16(model, path: Path) -> list[str]:
    """The model as fp16 safetensors shards of at most 16 MiB."""
    half = type(model)(model.config)
    half.load_state_dict(model.state_dict())
    half = half.half()
    written = half.save_pretrained(path, overwrite=True, max_shard_bytes=SHARD_BYTES)
    return sorted(p.name for p in Path(written).glob("*.safetensors"))


# ------------------------------------------------------------------ jobs (one process each)
def _train_job(args: dict, stage: str, overrides: dict):
    """One job's model from ``args["init"]`` with ``overrides``, trained for ``stage``; returns
    the model (in eval mode), the training result and the held-out items to score it on.

    ``args["seed"]`` (default 0) seeds the engine (data order, sampling) and, above 0 in the
    autoencoder stage, also redraws the autoencoder's initial weights (identically for the two
    Table 2 variants of that seed).
    """
    torch.set_num_threads(args["threads"])
    seed = args.get("seed", 0)
    model = load(Path(args["init"]), args["device"], {**overrides, "train.trainer.seed": seed})
    if seed and stage == "autoencoder":
        reseed_autoencoder(model, seed)
    res = train_stage(model, stage, Path(args["data"]), Path(args["out"]) / "run", args["budget_s"])
    model.eval()
    cfg = model.config
    items = eval_samples(
        model, Path(args["eval"]), EVAL_VIEWS, cfg.loss.render_resolution, cfg.encoder.num_points
    )
    return model, res, items


def reseed_autoencoder(model, seed: int) -> None:
    """Redraw the autoencoder's initial weights from ``seed``: those of a fresh model with
    attention on, so the two Table 2 variants of one seed share every weight they both have."""
    from gs_method_compress3d.model import Compress3D

    cfg = model.config.with_overrides({"attention.enabled": True})
    torch.manual_seed(seed)
    fresh = Compress3D(cfg).autoencoder.state_dict()
    own = model.autoencoder.state_dict()
    model.autoencoder.load_state_dict({k: v for k, v in fresh.items() if k in own})


def autoencoder_job(args: dict) -> dict:
    """Train and score one autoencoder variant (Table 2)."""
    from gs_core.errors import GS3DError

    model, res, items = _train_job(args, "autoencoder", {"attention.enabled": args["attention"]})
    dev, out = args["device"], Path(args["out"])
    rows, failures = [], 0
    with torch.no_grad():
        for item in items:
            b = to_device(item, dev)
            ae = model.autoencoder
            try:
                shape = ae.extract(ae.decode(ae.encode(b["points"], b["point_colors"]).mode()))[0]
            except GS3DError:
                failures += 1
                continue
            images = mesh_images(shape.mesh, item, dev, shape.surface_color)
            row = image_scores(images, item, dev)
            row.update(
                geometry_scores(
                    shape.mesh, Path(args["eval"]), item["object_id"], args["iou_resolution"]
                )
            )
            rows.append(row)
    model.save_pretrained(out / "model", overwrite=True)
    res.update({"objects": len(items), "empty_surfaces": failures, "scores": mean_dict(rows)})
    return res


def score_generations(
    model, items: list, args: dict, guidance: tuple[float, float] | None = None
) -> tuple[dict, int]:
    """Generations of ``items`` over ``args["seeds"]`` seeds, at ``guidance = (s_s, s_p)``
    (default: the config's): per seed mean image and geometry scores, their mean and spread
    (max - min) over seeds, and over every generation the procedural Fréchet distance and the
    procedural encoder similarity (our names for the paper's FID and CLIP similarity). Also the
    count of generations with no surface."""
    from gs_core.errors import GS3DError
    from gs_method_compress3d.frechet import frechet_distance

    dev = args["device"]
    per_seed, gen_feats, gt_feats, sims, failures = [], [], [], [], 0
    with torch.no_grad():
        for seed in range(args["seeds"]):
            rows = []
            for item in items:
                b = to_device(item, dev)
                try:
                    out_g = model.generate(b["input_rgba"], seed=seed, guidance=guidance)
                except GS3DError:
                    failures += 1
                    continue
                mesh = out_g.meshes[0]
                images = mesh_images(mesh, item, dev)
                row = image_scores(images, item, dev)
                row.update(
                    geometry_scores(
                        mesh, Path(args["eval"]), item["object_id"], args["iou_resolution"]
                    )
                )
                rows.append(row)
                f_gen = model.encoders.image(images["rgb"].permute(0, 3, 1, 2).float())
                f_gt = model.encoders.image(item["target_rgb"].to(dev).permute(0, 3, 1, 2))
                gen_feats.append(f_gen.cpu())
                gt_feats.append(f_gt.cpu())
                sims.append(float(torch.nn.functional.cosine_similarity(f_gen, f_gt).mean()))
            if rows:
                per_seed.append(mean_dict(rows))
    scores = mean_dict(per_seed) if per_seed else {}
    if per_seed:
        scores["spread"] = {
            k: max(r[k] for r in per_seed) - min(r[k] for r in per_seed) for k in per_seed[0]
        }
    if len(gen_feats) and sum(len(f) for f in gen_feats) >= 2:
        scores["procedural_frechet_distance"] = frechet_distance(
            torch.cat(gen_feats), torch.cat(gt_feats)
        )
        scores["procedural_encoder_similarity"] = sum(sims) / len(sims)
    return scores, failures


def guidance_grid(
    model, items: list, args: dict, values: list[float], known: dict | None = None
) -> dict:
    """Table 5: the procedural Fréchet distance and encoder similarity at every ``(s_s, s_p)``
    of ``values`` x ``values``, and the cell with the lowest distance. ``known`` maps cells
    already scored (the configured scales) to their ``score_generations`` result."""
    known = known or {}
    cells = []
    for s_s in values:
        for s_p in values:
            scored_before = known.get((s_s, s_p))
            if scored_before is None:
                scored_before = score_generations(model, items, args, (s_s, s_p))
            scores, failures = scored_before
            cells.append(
                {
                    "s_s": s_s,
                    "s_p": s_p,
                    "procedural_frechet_distance": scores.get("procedural_frechet_distance"),
                    "procedural_encoder_similarity": scores.get("procedural_encoder_similarity"),
                    "psnr": scores.get("psnr"),
                    "empty_surfaces": failures,
                }
            )
    scored = [c for c in cells if c["procedural_frechet_distance"] is not None]
    best = min(scored, key=lambda c: c["procedural_frechet_distance"]) if scored else None
    return {"values": values, "cells": cells, "best": best}


def diffusion_job(args: dict) -> dict:
    """Train the triplane diffusion (with or without the prior) and score generations (Table 4);
    with ``args["guidance_grid"]`` (the model with the prior only) also Table 5's grid."""
    overrides = {"unet.use_prior": args["use_prior"], "unet.latent_scale": args["latent_scale"]}
    model, res, items = _train_job(args, "diffusion", overrides)
    out = Path(args["out"])
    scores, failures = score_generations(model, items, args)
    model.save_pretrained(out / "model", overwrite=True)
    res.update(
        {
            "objects": len(items),
            "seeds": args["seeds"],
            "empty_surfaces": failures,
            "scores": scores,
            "references": mean_nested([reference_scores(item, args["device"]) for item in items]),
        }
    )
    if args.get("guidance_grid") and args["use_prior"]:
        u = model.config.unet
        configured = {(u.guidance_shape, u.guidance_image): (scores, failures)}
        res["guidance_grid"] = guidance_grid(
            model, items, args, args["guidance_grid"], known=configured
        )
    return res


def ae_dir(variant: str, seed: int) -> str:
    name = "autoencoder-" + variant.replace("_", "-")
    return name if seed == 0 else f"{name}-seed{seed}"


PER_SEED_KEYS = ("steps", "seconds", "empty_surfaces", "scores", "curve")
TABLE2_TERMS = {"rgb": "l_rgb", "mask": "l_mask", "depth": "l_depth", "chamfer": "chamfer"}


def table2(runs: list[dict], seeds: int | list[int], first_seed: int = 0) -> dict:
    """Table 2 from the autoencoder runs (``[seed K attention, seed K no attention, seed K + 1
    ...]``, K = ``first_seed``; or ``seeds`` the list of the pairs' seeds, in order, when they
    are not consecutive): the first seed's runs in full, every seed's steps, scores and
    loss curve under ``per_seed``, and over the seeds each score's mean and spread (max - min)
    per variant; attention is better on a term when its mean is lower, and better beyond the
    spread when the means differ by more than both variants' spreads."""
    ids = list(seeds) if isinstance(seeds, list) else [first_seed + k for k in range(seeds)]
    if len(ids) != len(runs) // 2 or len(runs) % 2:
        raise ValueError(f"{len(runs)} runs are not one attention / no-attention pair per seed")
    out: dict[str, Any] = {"attention": runs[0], "no_attention": runs[1], "seeds": len(ids)}
    out["per_seed"] = [
        {
            "seed": ids[i // 2],
            "variant": "attention" if i % 2 == 0 else "no_attention",
            **{k: r[k] for k in PER_SEED_KEYS if k in r},
        }
        for i, r in enumerate(runs)
    ]
    per = {"attention": runs[0::2], "no_attention": runs[1::2]}
    scored = {k: [r["scores"] for r in v if r["scores"]] for k, v in per.items()}
    if not all(scored.values()):
        return out
    keys = sorted(set.intersection(*(set(r) for rows in scored.values() for r in rows)))
    mean = {k: {m: sum(r[m] for r in rows) / len(rows) for m in keys} for k, rows in scored.items()}
    spread = {
        k: {m: max(r[m] for r in rows) - min(r[m] for r in rows) for m in keys}
        for k, rows in scored.items()
    }
    a, n = mean["attention"], mean["no_attention"]
    out.update(mean=mean, spread=spread)
    out["attention_better"] = {t: a[m] < n[m] for t, m in TABLE2_TERMS.items()}
    out["attention_better_beyond_spread"] = {
        t: n[m] - a[m] > max(spread["attention"][m], spread["no_attention"][m])
        for t, m in TABLE2_TERMS.items()
    }
    out["paired"] = paired_margins(per["attention"], per["no_attention"])
    return out


def paired_margins(attention: list[dict], without: list[dict]) -> dict[str, dict[str, Any]]:
    """Per Table 2 term, the margins of the seeds' pairs (without - attention: the two variants
    of one seed share their initial weights and data order, so each pair differs only by the
    attention): their mean, its standard error and how many seeds attention wins."""
    out: dict[str, dict[str, Any]] = {}
    for term, key in TABLE2_TERMS.items():
        margins = [
            n["scores"][key] - a["scores"][key]
            for a, n in zip(attention, without, strict=True)
            if key in a["scores"] and key in n["scores"]
        ]
        k = len(margins)
        mean = sum(margins) / k if k else math.nan
        var = sum((m - mean) ** 2 for m in margins) / (k - 1) if k > 1 else math.nan
        out[term] = {
            "seeds": k,
            "mean_margin": mean,
            "standard_error": math.sqrt(var / k) if k > 1 else None,
            "attention_wins": sum(m > 0 for m in margins),
        }
    return out


def merge_table2(results: list[dict]) -> dict:
    """One Table 2 from the ``per_seed`` runs of several results (e.g. seeds 0-1 from one
    command and 2-3 from another, ``--ae-first-seed``): each seed once, with both variants."""
    found: dict[tuple[int, str], dict] = {}
    for i, res in enumerate(results):
        for run in res.get("stages", {}).get("autoencoder", {}).get("per_seed", []):
            key = (run["seed"], run["variant"])
            if key in found:
                raise ValueError(f"results {i + 1}: seed {key[0]} {key[1]} appears twice")
            found[key] = run
    seeds = sorted({s for s, _ in found})
    for s in seeds:
        for variant in ("attention", "no_attention"):
            if (s, variant) not in found:
                raise ValueError(f"seed {s} has no {variant} run")
    if not seeds:
        raise ValueError("no stages.autoencoder.per_seed runs in the results given")
    runs = [
        {k: v for k, v in found[(s, variant)].items() if k not in ("seed", "variant")}
        for s in seeds
        for variant in ("attention", "no_attention")
    ]
    return table2(runs, seeds)


def run_jobs(fn, jobs: list[dict], devices: list[str]) -> list[dict]:
    """Run ``fn`` on each job; in parallel processes when several GPUs are given."""
    for i, job in enumerate(jobs):
        job["device"] = devices[i % len(devices)]
    if len(devices) == 1:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(len(devices), mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, jobs))


# ------------------------------------------------------------------ the other checks
@torch.no_grad()
def retrieval(model, items: list[dict], device: str, with_prior: bool) -> dict[str, Any]:
    """Image -> shape top-1 retrieval among the held-out objects: by the image embedding and,
    ``with_prior``, by the prior's samples from it (``PRIOR_SEEDS`` noise seeds; the prior
    beats the image embedding when every seed does better)."""
    from gs_method_compress3d.procedural_encoders import retrieval_accuracy

    rgb = torch.stack([model.input_rgb(i["input_rgba"][None])[0] for i in items]).to(device)
    xyz = torch.stack([i["points"] for i in items]).to(device)
    col = torch.stack([i["point_colors"] for i in items]).to(device)
    e_p = model.image_embedding(rgb)
    e_s = model.shape_embedding(xyz, col)
    out = {"objects": len(items), "chance": 1.0 / max(len(items), 1)}
    out["image_to_shape"] = retrieval_accuracy(e_p, e_s)
    if with_prior:
        # The prior's samples differ with its noise: three seeds give the spread.
        per_seed = []
        for seed in range(PRIOR_SEEDS):
            g = torch.Generator(device=device).manual_seed(seed)
            per_seed.append(retrieval_accuracy(model.prior.sample(e_p, generator=g), e_s))
        out["prior_to_shape_seeds"] = per_seed
        out["prior_to_shape"] = sum(per_seed) / len(per_seed)
        out["prior_beats_image_embedding"] = min(per_seed) > out["image_to_shape"]
    return out


@torch.no_grad()
def latent_scale(model, data: Path, device: str, objects: int = 64) -> float:
    """1 / std of the encoder's latents over training objects (LDM's scale factor)."""
    from gs_method_compress3d.training import stage_dataset

    ds = stage_dataset(model.config, data, "diffusion")
    zs = []
    for i in range(min(objects, len(ds))):
        b = to_device(ds[i], device)
        zs.append(model.autoencoder.encode(b["points"], b["point_colors"]).mode().flatten())
    std = float(torch.cat(zs).std())
    return 1.0 / max(std, 1e-6)


def guidance_values(text: str) -> list[float]:
    """``"1,3,5,10"`` -> ``[1.0, 3.0, 5.0, 10.0]`` (``--guidance-grid``)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated guidance scales >= 0 such as 1,3,5,10, got {text!r}"
        )
    return values


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier run's --out")
    ap.add_argument("--preset", default="small", choices=["small", "tiny"])
    ap.add_argument("--data", type=Path, default=None, help="training set (default: generate)")
    ap.add_argument(
        "--eval-data", type=Path, default=None, help="held-out set (default: procedural-eval)"
    )
    ap.add_argument("--objects", type=int, default=None, help="training objects to generate")
    ap.add_argument(
        "--gpus", default=None, help="e.g. '0,1'; default: cuda:0 if available, else cpu"
    )
    ap.add_argument("--seeds", type=int, default=3, help="generation seeds per object (Table 4)")
    ap.add_argument(
        "--ae-seeds",
        type=int,
        default=1,
        help="training seeds per Table 2 variant (the spread needs at least 2; all jobs run at "
        "once, spread over --gpus, which may repeat a GPU: '0,0,0,0')",
    )
    ap.add_argument(
        "--ae-first-seed",
        type=int,
        default=0,
        help="the first Table 2 training seed (seeds K .. K + --ae-seeds - 1), so that seeds "
        "can be trained by separate commands and joined with --merge-table2",
    )
    ap.add_argument(
        "--merge-table2",
        nargs="+",
        type=Path,
        default=None,
        metavar="RESULTS",
        help="no training: join the Table 2 seeds of these results.json files into one "
        "OUT/results.json",
    )
    ap.add_argument(
        "--retrieval-objects",
        type=int,
        default=0,
        help="also measure retrieval among this many further held-out objects (0: only "
        "procedural-eval's)",
    )
    ap.add_argument("--iou-resolution", type=int, default=64)
    ap.add_argument(
        "--budget-s",
        type=stage_budget_arg(STAGES),
        default={},
        help="wall-clock cap per training run in seconds, one number or per stage as JSON, "
        'e.g. \'{"autoencoder": 330, "diffusion": 300}\' (stages not named: no cap)',
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every stage, e.g. train.stage_steps.autoencoder=3000",
    )
    ap.add_argument(
        "--until",
        default="diffusion",
        choices=STAGES,
        help="stop after this stage (results.json holds the stages run; checkpoints only "
        "after diffusion)",
    )
    ap.add_argument(
        "--guidance-grid",
        type=guidance_values,
        default=None,
        metavar="S,S,...",
        help="Table 5: after the diffusion stage, score the model with the prior at every "
        "(s_s, s_p) of these values x these values (the paper's: 1,3,5,10), "
        "results.json['stages']['diffusion']['guidance_grid']",
    )
    ap.add_argument(
        "--skip-autoencoder",
        action="store_true",
        help="with --until prior: train the prior on the encoders' model, without the "
        "autoencoder stage (the prior's retrieval check alone)",
    )
    args = ap.parse_args(argv)
    if args.skip_autoencoder and args.until != "prior":
        ap.error("--skip-autoencoder: only with --until prior (diffusion needs the autoencoder)")
    if args.ae_first_seed < 0:
        ap.error(f"--ae-first-seed: expected a seed >= 0, got {args.ae_first_seed}")
    budget = args.budget_s

    from gs_core.io.atomic import fresh_output_dir

    if args.merge_table2:
        return merge_results(ap, args.merge_table2, args.out, args.overwrite)
    out: Path = fresh_output_dir(args.out, args.overwrite)
    if args.gpus:
        devices = [f"cuda:{g.strip()}" for g in args.gpus.split(",") if g.strip()]
    else:
        devices = ["cuda:0" if torch.cuda.is_available() else "cpu"]
    dev = devices[0]
    threads = 1 if dev == "cpu" else 4
    results: dict[str, Any] = {"preset": args.preset, "devices": devices, "stages": {}}
    t_all = time.perf_counter()

    data, evald = args.data, args.eval_data
    if data is None or evald is None:
        gen_train, gen_eval = make_data(out, args.preset, args.objects)
        data, evald = data or gen_train, evald or gen_eval
    results["data"] = {"train": str(data), "eval": str(evald)}

    # 1. procedural contrastive encoders
    model = build(args.preset, args.set, dev)
    results["stages"]["encoders"] = train_stage(
        model, "encoders", data, out / "runs" / "encoders", budget.get("encoders")
    )
    model.eval()
    cfg = model.config
    items = eval_samples(model, evald, 1, cfg.embeddings.image_size, cfg.embeddings.shape_points)
    results["stages"]["encoders"]["retrieval"] = retrieval(model, items, dev, with_prior=False)
    gallery = []
    if args.retrieval_objects:
        gallery = eval_samples(
            model,
            make_gallery(out, args.preset, args.retrieval_objects),
            1,
            cfg.embeddings.image_size,
            cfg.embeddings.shape_points,
        )
        results["stages"]["encoders"]["retrieval_gallery"] = retrieval(
            model, gallery, dev, with_prior=False
        )
    model.save_pretrained(out / "work" / "encoders", overwrite=True)
    if args.until == "encoders":
        return finish(results, out, t_all)

    # 2. autoencoder with / without 3D-aware cross-attention (Table 2)
    common = {
        "data": str(data),
        "eval": str(evald),
        "threads": threads,
        "iou_resolution": args.iou_resolution,
    }
    if not args.skip_autoencoder:
        variants = (("attention", True), ("no_attention", False))
        jobs = [
            {
                **common,
                "attention": flag,
                "seed": seed,
                "budget_s": budget.get("autoencoder"),
                "init": str(out / "work" / "encoders"),
                "out": str(out / "work" / ae_dir(name, seed)),
            }
            for seed in range(args.ae_first_seed, args.ae_first_seed + args.ae_seeds)
            for name, flag in variants
        ]
        ae = run_jobs(autoencoder_job, jobs, devices)
        results["stages"]["autoencoder"] = table2(ae, args.ae_seeds, args.ae_first_seed)
        if args.until == "autoencoder":
            return finish(results, out, t_all)

    # 3. prior (on the attention autoencoder; --skip-autoencoder: on the encoders alone)
    init = "encoders" if args.skip_autoencoder else f"{ae_dir('attention', 0)}/model"
    model = load(out / "work" / init, dev)
    results["stages"]["prior"] = train_stage(
        model, "prior", data, out / "runs" / "prior", budget.get("prior")
    )
    model.eval()
    for key, held_out in (("retrieval", items), ("retrieval_gallery", gallery)):
        if held_out:
            results["stages"]["prior"][key] = retrieval(model, held_out, dev, with_prior=True)
    if args.skip_autoencoder:  # no latents to scale: the retrieval check alone
        model.save_pretrained(out / "work" / "prior", overwrite=True)
        return finish(results, out, t_all)
    scale = latent_scale(model, data, dev)
    results["stages"]["prior"]["latent_scale"] = scale
    model.save_pretrained(out / "work" / "prior", overwrite=True)
    if args.until == "prior":
        return finish(results, out, t_all)

    # 4. triplane diffusion with / without the prior (Table 4)
    jobs = [
        {
            **common,
            "use_prior": flag,
            "budget_s": budget.get("diffusion"),
            "latent_scale": scale,
            "seeds": args.seeds,
            "guidance_grid": args.guidance_grid,
            "init": str(out / "work" / "prior"),
            "out": str(out / "work" / f"diffusion-{name}"),
        }
        for flag, name in ((True, "prior"), (False, "no-prior"))
    ]
    dm = run_jobs(diffusion_job, jobs, devices)
    results["stages"]["diffusion"] = {"prior": dm[0], "no_prior": dm[1]}
    if "guidance_grid" in dm[0]:
        results["stages"]["diffusion"]["guidance_grid"] = dm[0].pop("guidance_grid")
    p, q = dm[0]["scores"], dm[1]["scores"]
    if "procedural_frechet_distance" in p and "procedural_frechet_distance" in q:
        results["stages"]["diffusion"]["prior_better"] = {
            "procedural_frechet_distance": p["procedural_frechet_distance"]
            < q["procedural_frechet_distance"],
            "procedural_encoder_similarity": p["procedural_encoder_similarity"]
            > q["procedural_encoder_similarity"],
            "chamfer": p["chamfer"] < q["chamfer"],
        }

    # 5. the final models, fp16 shards <= 16 MiB
    shards = {}
    for name in ("prior", "no-prior"):
        m = load(out / "work" / f"diffusion-{name}" / "model", "cpu")
        shards[name] = save_fp16(m, out / f"model-attention-{name}")
    results["checkpoints"] = shards
    return finish(results, out, t_all)


def merge_results(ap, paths: list[Path], out: Path, overwrite: bool) -> dict:
    """``--merge-table2``: read every results file (one line naming a bad one), write the
    joined Table 2 to ``OUT/results.json``."""
    from gs_core.io.atomic import fresh_output_dir

    results = []
    for path in paths:
        try:
            results.append(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            ap.error(f"--merge-table2: {path}: expected a train_small.py results.json ({err})")
    try:
        merged = merge_table2(results)
    except ValueError as err:
        ap.error(f"--merge-table2: {err}")
    out = fresh_output_dir(out, overwrite)
    joined = {
        "preset": results[0].get("preset"),
        "devices": sorted({d for r in results for d in r.get("devices", [])}),
        "merged_from": [str(p) for p in paths],
        "stages": {"autoencoder": merged},
    }
    return finish(joined, out, time.perf_counter())


def finish(results: dict, out: Path, t_all: float) -> dict:
    """Write ``OUT/results.json`` (atomically) and print the run's summary line."""
    from gs_core.io.atomic import atomic_write_text

    results["seconds"] = round(time.perf_counter() - t_all, 2)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("preset", "devices", "seconds")}))
    return results


if __name__ == "__main__":
    main()
