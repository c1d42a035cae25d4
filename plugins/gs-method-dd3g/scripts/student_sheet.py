"""Trained DD3G students side by side on procedural-eval objects: a picture of what each one
generates, and whether its draws differ and what their average would score.

    python3 plugins/gs-method-dd3g/scripts/student_sheet.py CKPT_DIR [CKPT_DIR ...] \
        --out sheet.png [--json draws.json] [--objects 4] [--draws 4] \
        [--eval-elevation LOW HIGH] [--overwrite]

``CKPT_DIR``: checkpoints that ``train_small.py`` saves under ``OUT/checkpoints/<variant>`` (a
lease brings them back with ``BRING``, see tools/device/jobs/dd3g-collect.sh). The objects are
the first ``--objects`` of procedural-eval as ``train_small.py`` renders it (eval seed, 24-view
ring at elevation 0, the checkpoints' render resolution), scored on ring12 with the automatic
alignment, as in its tables.

``--eval-elevation LOW HIGH`` shows each object's input from a hidden elevation drawn from the
range, as ``train_small.py --eval-elevation`` does (the same object and input azimuth; the
ring12 targets stay at elevation 0). With ``--objects 24 --draws 1`` the PSNR of one draw is
the score ``train_small.py`` reports for seed 0 of its 24 evaluation objects, so brought-back
checkpoints can be scored under either protocol without training again.

The sheet has a row per object: the input and the ground truth turned +90, 180 and -90 degrees,
then each checkpoint's render at those views from draw 0 (column letters A, B, ... are printed
with the checkpoints they stand for, and kept in ``--json``).

The draws answer one question of Table II. A generator that sees the noise (PEPD) learns each
of the teacher's samples; one that does not (PD only) can only learn their average, and an
average of plausible views often scores a higher PSNR than any one of them. Per checkpoint:
the mean PSNR of single draws, the PSNR of the draws' per-pixel average, and the spread between
draws (per-pixel standard deviation x 255). A generator whose draws never differ has a spread
of 0 and gains nothing from averaging. Two more tables: where each student's Gaussians are and
how large they are drawn (:func:`gaussian_stats`), and ``by_turn``, the PSNR of one draw at
each target view by its turn from the input: whether a student's lead is near the input or on
the unseen side.
"""

from __future__ import annotations

import argparse
import json
import string
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# The ring12 targets (30 degrees apart, the input first) the sheet shows: +90, 180, -90.
SHEET_TARGETS = (3, 6, 9)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", type=Path, help="DD3G checkpoint directories")
    p.add_argument("--out", type=Path, required=True, help="the sheet (PNG)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers")
    p.add_argument("--objects", type=int, default=4, help="procedural-eval objects (rows)")
    p.add_argument("--draws", type=int, default=4, help="generation seeds per object")
    p.add_argument(
        "--eval-elevation",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("LOW", "HIGH"),
        help="degrees: each input seen from one elevation drawn from [LOW, HIGH], hidden from "
        "the students (0 0, the default: procedural-eval's input at elevation 0)",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out / --json")
    return p


def _load(path: Path, device: str):
    from gs_method_dd3g import DD3G

    if not (path / "config.json").is_file():
        raise SystemExit(f"{path}: not a DD3G checkpoint directory (no config.json)")
    return DD3G.from_pretrained(path, device=device).float().eval()


def draw_scores(preds: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``preds [D, V, H, W, 3]`` (D draws) and ``target [V, H, W, 3]`` -> the mean PSNR of
    single draws, the PSNR of their per-pixel average and the spread between draws (per-pixel
    standard deviation x 255, 0 for one draw)."""
    from gs_core.metrics.psnr import psnr

    single = float(np.mean([float(psnr(p, target).mean()) for p in preds]))
    average = float(psnr(preds.mean(0), target).mean())
    spread = float(preds.std(0, unbiased=False).mean() * 255.0) if len(preds) > 1 else 0.0
    return {"psnr_single": single, "psnr_average": average, "spread_x255": spread}


def main(argv: list[str] | None = None) -> dict:
    a = _parser().parse_args(argv)
    from gs_core.imaging import composite, contact_sheet, save_image
    from gs_core.io.atomic import atomic_write_text, check_overwrite
    from gs_core.procedural.generator import EVAL_SEED
    from gs_method_dd3g.procedural_evaluation import (
        check_elevation_range,
        make_objects,
        paired_views,
        ring12_prediction,
    )

    for path in (a.out, a.json):
        if path is not None:
            check_overwrite(path, a.overwrite, directory=False)
    if a.objects < 1 or a.draws < 1:
        raise SystemExit("--objects and --draws: at least 1")
    try:
        check_elevation_range("--eval-elevation", *a.eval_elevation)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if len(a.checkpoints) > len(string.ascii_uppercase):
        raise SystemExit(f"at most {len(string.ascii_uppercase)} checkpoints")
    t0 = time.time()
    models = [_load(p, a.device) for p in a.checkpoints]
    sizes = {m.config.render_resolution for m in models}
    if len(sizes) != 1:
        raise SystemExit(f"the checkpoints render at different resolutions {sorted(sizes)}")
    letters = dict(zip(string.ascii_uppercase, (str(p) for p in a.checkpoints), strict=False))
    for letter, path in letters.items():
        print(f"{letter}: {path}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        size = sizes.pop()
        root = make_objects(Path(tmp) / "eval", a.objects, size, EVAL_SEED, "test")
        inputs = None
        if tuple(a.eval_elevation) != (0.0, 0.0):
            inputs = make_objects(
                Path(tmp) / "eval-inputs", a.objects, size, EVAL_SEED, "test", a.eval_elevation
            )
        tiles, labels = [], []
        per_model: list[list[dict]] = [[] for _ in models]
        for views, source in paired_views(root, inputs):
            tiles.append(composite(source.rgba[0] / 255.0))
            elevation = float(source.record.frames[0].extras["elevation"])
            labels.append(views.object_id + (f" el {elevation:+.0f}" if inputs else ""))
            row = []
            for k, model in enumerate(models):
                preds = [ring12_prediction(model, views, seed, source) for seed in range(a.draws)]
                target = preds[0].target
                turns = [turn_label(t) for t in preds[0].relative_azimuths]
                if k == 0:
                    row += [(target[i], f"GT {turns[i]}") for i in SHEET_TARGETS]
                stacked = torch.stack([p.pred for p in preds])
                scores = draw_scores(stacked, target) | {"by_turn": by_turn(stacked, target, turns)}
                scores |= gaussian_stats(preds[0].gaussians, preds[0].pixel)
                per_model[k].append({"object": views.object_id, **scores})
                letter = string.ascii_uppercase[k]
                row += [(preds[0].pred[i], f"{letter} {turns[i]}") for i in SHEET_TARGETS]
            tiles += [t.cpu().numpy() for t, _ in row]
            labels += [label for _, label in row]
            print(f"{views.object_id}: done", flush=True)
    sheet = contact_sheet(tiles, ncols=1 + len(SHEET_TARGETS) * (1 + len(models)), labels=labels)
    save_image(a.out, sheet, overwrite=a.overwrite)
    result = {
        "checkpoints": letters,
        "objects": a.objects,
        "draws": a.draws,
        "eval_elevation": list(a.eval_elevation),
        "device": a.device,
        "students": {
            letter: {
                key: float(np.mean([r[key] for r in rows]))
                for key in ("psnr_single", "psnr_average", "spread_x255", *GAUSSIAN_STATS)
            }
            | {"by_turn": _mean_by_turn(rows), "per_object": rows}
            for letter, rows in zip(letters, per_model, strict=True)
        },
        "seconds": time.time() - t0,
    }
    print("| | checkpoint | PSNR of one draw | PSNR of the draws' average | spread x255 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for letter, row in result["students"].items():
        print(
            f"| {letter} | {letters[letter]} | {row['psnr_single']:.2f} | "
            f"{row['psnr_average']:.2f} | {row['spread_x255']:.2f} |"
        )
    print(f"\nWhere each student's Gaussians are (draw 0), mean of the {a.objects} objects")
    print("| | inside the objects' ball | below half a pixel | median size (px) |")
    print("| --- | ---: | ---: | ---: |")
    for letter, row in result["students"].items():
        print(
            f"| {letter} | {row['share_inside']:.3f} | {row['share_subpixel']:.3f} | "
            f"{row['median_size_px']:.2f} |"
        )
    turns_seen = list(next(iter(result["students"].values()))["by_turn"])
    print(f"\nPSNR of one draw by turn from the input (degrees), over the {a.objects} objects")
    print("| turn | " + " | ".join(result["students"]) + " |")
    print("| ---: |" + " ---: |" * len(result["students"]))
    for turn in turns_seen:
        cells = " | ".join(f"{r['by_turn'][turn]:.2f}" for r in result["students"].values())
        print(f"| {turn} | {cells} |")
    if a.json is not None:
        atomic_write_text(a.json, json.dumps(result, indent=2) + "\n")
    return result


# The procedural objects fill the ball of radius 0.5 about the origin (ProgressiveDecodingConfig.
# position_bound's note); a little margin for Gaussians on the surface.
OBJECT_BALL = 0.55
GAUSSIAN_STATS = ("share_inside", "share_subpixel", "median_size_px")


def gaussian_stats(gaussians, pixel: float) -> dict[str, float]:
    """Where one prediction's Gaussians are and how large they are drawn: the share of their
    means inside the objects' ball (radius :data:`OBJECT_BALL`), the share whose largest axis is
    below half a pixel (``pixel``: world units per pixel at the camera's distance) and the
    median largest axis in pixels. A generator can park Gaussians it does not need outside the
    object or shrink them below a pixel; either way they draw nothing."""
    size = gaussians.scales.max(-1).values.float()
    inside = gaussians.means.float().norm(dim=-1) < OBJECT_BALL
    return {
        "share_inside": float(inside.float().mean()),
        "share_subpixel": float((size < pixel / 2).float().mean()),
        "median_size_px": float(size.median() / pixel),
    }


def turn_label(degrees: float) -> str:
    """A turn from the input as whole degrees in (-180, 180]: ``"+90"``, ``"-30"``, ``"+180"``
    (the far side is one label, whichever side of 180 the camera's float azimuth fell)."""
    whole = round(degrees) % 360
    return f"{whole - 360 if whole > 180 else whole:+d}"


def by_turn(preds: torch.Tensor, target: torch.Tensor, turns: list[str]) -> dict[str, float]:
    """The mean PSNR of single draws at each target view, keyed by its turn from the input
    (:func:`turn_label`): ``preds [D, V, H, W, 3]``, ``target [V, H, W, 3]``, ``turns`` V
    labels. Where a student gains or loses, near the input or on the unseen side."""
    from gs_core.metrics.psnr import psnr

    if len(set(turns)) != len(turns):
        raise ValueError(f"two target views share a turn: {turns}")
    per_view = torch.stack([psnr(p, target) for p in preds]).mean(0)
    return {t: float(v) for t, v in zip(turns, per_view, strict=True)}


def _mean_by_turn(rows: list[dict]) -> dict[str, float]:
    """Objects' ``by_turn`` averaged, the turns in order from -150 to +180 degrees."""
    keys = sorted({k for r in rows for k in r["by_turn"]}, key=float)
    return {k: float(np.mean([r["by_turn"][k] for r in rows if k in r["by_turn"]])) for k in keys}


if __name__ == "__main__":
    main()
