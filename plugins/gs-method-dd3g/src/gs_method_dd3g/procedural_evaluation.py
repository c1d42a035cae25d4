"""DD3G's evaluation on the procedural world: objects rendered on a 24-view ring at elevation 0
(so the paper's ring12 protocol is available), ring12 targets relative to the input view, and
the student's prediction aligned to the input by the automatic azimuth search
(:mod:`gs_core.evaluation.alignment`), which stands in for the paper's rotating the 0-degree view
onto the input by hand."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from gs_core.gaussians import Gaussians

# The procedural ImageDream teacher trained on rings at elevations in [-30, 30] degrees; inputs
# beyond them show the students views that no teacher sample covered.
ELEVATION_LIMIT_DEG = 30.0


def check_elevation_range(flag: str, low: float, high: float) -> None:
    """Refuse an input-elevation range (degrees) outside the teacher's, naming ``flag``."""
    if not -ELEVATION_LIMIT_DEG <= low <= high <= ELEVATION_LIMIT_DEG:
        lim = f"{ELEVATION_LIMIT_DEG:g}"
        raise ValueError(
            f"{flag}: expected -{lim} <= LOW <= HIGH <= {lim} (the teacher's training "
            f"elevations), got {low:g} {high:g}"
        )


def make_objects(
    out: Path,
    objects: int,
    resolution: int,
    seed: int,
    split: str,
    elevation_range: tuple[float, float] = (0.0, 0.0),
) -> Path:
    """``objects`` procedural objects of ``split`` under ``out``, each on a 24-view ring at
    one elevation drawn from ``elevation_range`` per object (0 for procedural-eval; ``seed``:
    ``gs_core.procedural.generator.EVAL_SEED`` for procedural-eval)."""
    from gs_core.procedural.generator import ProceduralConfig, generate

    cfg = ProceduralConfig(
        objects=objects,
        views=24,
        resolution=resolution,
        seed=seed,
        camera_layout="ring24",
        elevation_range=tuple(elevation_range),
        points=0,
        depth=False,
        normals=False,
        split=split,
    )
    # Every core: 512 objects x 24 views are minutes on one.
    generate(cfg, out, overwrite=True, workers=min(16, os.cpu_count() or 1), progress=False)
    return out


def object_views(root: Path) -> Iterator:
    """Each object's views under ``root`` (``gs_core.data.views.ObjectViews``)."""
    from gs_core.data.layout import list_objects
    from gs_core.data.views import load_object_views

    for oid in list_objects(root):
        yield load_object_views(root / oid)


def input_images(root: Path, size: int) -> torch.Tensor:
    """The first view of every object under ``root`` (the student's input, RGBA), resized:
    ``[N, 4, size, size]`` in [0, 1]."""
    ims = []
    for views in object_views(root):
        x = torch.from_numpy(views.rgba[0]).float().permute(2, 0, 1) / 255.0
        ims.append(
            torch.nn.functional.interpolate(
                x[None], (size, size), mode="bilinear", antialias=True, align_corners=False
            )[0]
        )
    return torch.stack(ims)


def paired_views(root: Path, inputs: Path | None = None) -> Iterator:
    """``(views, input_views)`` per object under ``root``: the input's views are the same
    object's under ``inputs`` (rendered again at a hidden elevation), or ``views`` itself."""
    sources = object_views(inputs) if inputs is not None else None
    for views in object_views(root):
        source = views if sources is None else next(sources)
        if source.object_id != views.object_id:
            raise ValueError(f"{inputs}: {source.object_id} where {root} has {views.object_id}")
        yield views, source


def input_elevations(root: Path) -> torch.Tensor:
    """The camera elevation (degrees) of every object's first view under ``root``: ``[N]``, in
    the order of :func:`input_images`."""
    return torch.tensor(
        [float(v.record.frames[0].extras["elevation"]) for v in object_views(root)],
        dtype=torch.float32,
    )


def ring12_targets(views) -> tuple[np.ndarray, torch.Tensor, list[int]]:
    """One object's camera centres ``[V, 3]``, its views on white ``[V, H, W, 3]`` and the
    indices of its ring12 targets (view 0 is the input)."""
    from gs_core.evaluation.protocols import select_views

    centers = torch.linalg.inv(views.cameras.viewmats.double())[:, :3, 3].numpy()
    sel = select_views(centers, "ring12", input_index=0, object_id=views.object_id)
    rgba = torch.from_numpy(views.rgba).float() / 255.0
    gt = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
    return centers, gt, list(sel.groups["ring12"])


@dataclass
class Ring12Prediction:
    """A prediction at an object's ring12 targets: ``pred`` and ``target`` ``[12, H, W, 3]``
    (on white, on the render's device), the targets' azimuths relative to the input
    (degrees), the alignment found (degrees), the Gaussians rendered (the prediction's frame,
    before the alignment) and the pixel size at the input camera's distance (world units per
    pixel of the renders)."""

    pred: torch.Tensor
    target: torch.Tensor
    relative_azimuths: list[float]
    offset_deg: float
    gaussians: Gaussians
    pixel: float


def input_on_white(views) -> torch.Tensor:
    """An object's input (view 0) composited on white: ``[H, W, 3]`` in [0, 1]."""
    x = torch.from_numpy(views.rgba[0]).float() / 255.0
    return x[..., :3] * x[..., 3:] + (1 - x[..., 3:])


def ring12_prediction(model, views, seed: int, input_views=None) -> Ring12Prediction:
    """Generate from an input view with ``seed`` and render at ``views``' ring12 targets,
    aligned to the input; ``model`` in eval mode.

    The input is ``views``' view 0, or with ``input_views`` (the same object rendered on a ring
    at another elevation: :func:`make_objects` with the same seed) that ring's view 0, seen from
    the same azimuth at its own elevation. The targets stay ``views``' ring at elevation 0, so
    the input's elevation is hidden from the model as in IV-A; the alignment renders the
    prediction at the input's camera, which the evaluation knows."""
    from gs_core.cameras import Cameras
    from gs_core.evaluation.alignment import rotate_about_y, search_azimuth_offset
    from gs_core.rendering import render

    centers, gt, tgt_idx = ring12_targets(views)
    source = views if input_views is None else input_views
    if source.object_id != views.object_id:
        raise ValueError(f"input_views: {source.object_id} is not {views.object_id}")
    rgba = torch.from_numpy(source.rgba[0]).float() / 255.0
    inp = rgba.permute(2, 0, 1)[None].to(model.device)
    input_rgb = input_on_white(source)
    elevation = float(source.record.frames[0].extras.get("elevation", 0.0))
    with torch.no_grad():
        g = model.generate(inp, seed=seed, cuda_graph=False).gaussians
    radius = float(np.linalg.norm(centers[0]))
    h = views.cameras.height
    fov = model.config.fov_deg
    # The prediction's frame: the input camera at azimuth 0 of the object frame.
    front = Cameras.orbit([0.0], [elevation], radius=radius, fov_deg=fov, width=h, height=h)

    def render_fn(c):
        return render(g[0], c.to(model.device), background=1.0).rgb

    al = search_azimuth_offset(render_fn, front, input_rgb.to(model.device))
    az_in = float(np.degrees(np.arctan2(centers[0, 0], centers[0, 2])))
    # targets relative to the input, in the prediction's frame, then the alignment
    rel = [float(np.degrees(np.arctan2(centers[i, 0], centers[i, 2]))) - az_in for i in tgt_idx]
    tcams = Cameras.orbit(rel, 0.0, radius=radius, fov_deg=fov, width=h, height=h)
    # metrics where the render is: on the CPU they were most of an evaluation's time
    pred = render_fn(rotate_about_y(tcams, al.offset_deg)).float().clamp(0, 1)
    pixel = 2.0 * radius * float(np.tan(np.radians(fov) / 2.0)) / h
    return Ring12Prediction(pred, gt[tgt_idx].to(pred.device), rel, al.offset_deg, g[0], pixel)


def evaluate(model, root: Path, seeds: int, inputs: Path | None = None) -> dict:
    """Mean PSNR / SSIM over ``root``'s objects (ring12, aligned), ``seeds`` generations each,
    with every object's scores; leaves ``model`` in eval mode. ``inputs``: the same objects at
    hidden elevations, whose view 0 is then the input (:func:`ring12_prediction`)."""
    from gs_core.metrics.psnr import psnr
    from gs_core.metrics.ssim import ssim

    model.eval()
    rows = []
    for views, source in paired_views(root, inputs):
        for s in range(seeds):
            p = ring12_prediction(model, views, s, source)
            rows.append(
                {
                    "object": views.object_id,
                    "seed": s,
                    "offset_deg": p.offset_deg,
                    "psnr": float(psnr(p.pred, p.target).mean()),
                    "ssim": float(ssim(p.pred, p.target).mean()),
                }
            )
    return {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "ssim": float(np.mean([r["ssim"] for r in rows])),
        "objects": rows,
    }


__all__ = [
    "ELEVATION_LIMIT_DEG",
    "Ring12Prediction",
    "check_elevation_range",
    "evaluate",
    "input_elevations",
    "input_images",
    "input_on_white",
    "make_objects",
    "object_views",
    "paired_views",
    "ring12_prediction",
    "ring12_targets",
]
