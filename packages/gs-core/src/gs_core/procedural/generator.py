"""``gs3d data procedural``: generate a multi-view dataset of procedural objects.

Object ``i`` is of category ``categories[i % len(categories)]`` and everything about it (shape,
cameras, point cloud) is drawn from generators seeded by ``(seed, i)``, so a dataset is the same
bytes on every run (on one platform: other CPUs may round transcendental functions differently)
and objects do not depend on how work is split between processes.

Cameras sit on the orbit sphere of :meth:`gs_core.cameras.Cameras.orbit` (y up, azimuth 0 on
+z) at ``radius`` with vertical ``fov_deg``; the defaults (radius 1.5, FOV 49.1 deg, objects in
the ball of radius 0.5) follow LGM / Zero123 renderings of unit-cube-normalised objects.

Camera layouts (``camera_layout``): ``random`` (``views`` random poses; any two of them are an
input and a Zero123 target with their relative camera), ``protocol`` (the evaluation views,
below), ``zero123pp`` (``views // 7`` sets, each a random input pose and the six Zero123++
views relative to its azimuth at the absolute elevations ``zero123pp_elevations``) and ``ring24``
(``views // 24`` rings of 24 views 15 degrees apart from a random start azimuth, at one
elevation per ring drawn from ``elevation_range``: ImageDream's four orthogonal views are every
sixth view of a ring). Frames record ``azimuth``, ``elevation``, ``group`` and, for the two set
layouts, ``set``. A random start azimuth is a random yaw of the object.

``asymmetric=true`` adds :mod:`gs_core.procedural.asymmetry` (an angular texture, side markers)
so the unseen side of an object cannot be predicted by mirroring the input. The ``eval-hard``
preset is ``procedural-eval-hard``: the ``eval`` layout on asymmetric objects of another seed.

The standard offline benchmark "procedural-eval" is the ``eval`` preset::

    gs3d data procedural --preset eval --out data/procedural-eval

24 objects (2 per category), seed 20251121, 256x256, all in the ``test`` split, each with an
input view at azimuth 0 / elevation 0, the ring-15 and Zero123++ protocol views and 16 random
views (see :mod:`gs_core.evaluation.protocols`). A method is scored on it with::

    gs3d eval --data data/procedural-eval --split test --method NAME --checkpoint DIR --out runs/eval-NAME
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_core.io.atomic import atomic_path, check_overwrite
from gs_core.procedural.templates import CATEGORIES

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
EVAL_SEED = 20251121
EVAL_HARD_SEED = 20261130
ZERO123PP_AZIMUTHS = (30.0, 90.0, 150.0, 210.0, 270.0, 330.0)
RING24_STEP_DEG = 15.0


class ProceduralConfig(Config):
    """What ``gs3d data procedural`` generates."""

    objects: int = pydantic.Field(24, gt=0, description="number of objects")
    views: int = pydantic.Field(32, gt=0, description="random views per object")
    resolution: int = pydantic.Field(128, ge=8, le=4096)
    seed: int = pydantic.Field(0, ge=0)
    categories: list[str] = pydantic.Field(default_factory=lambda: list(CATEGORIES))
    elevation_range: tuple[float, float] = (-30.0, 30.0)
    radius: float = pydantic.Field(1.5, gt=0, description="camera distance to the origin")
    fov_deg: float = pydantic.Field(49.1, gt=1, lt=170, description="vertical field of view")
    object_radius: float = pydantic.Field(0.5, gt=0, le=1.0)
    antialias: int = pydantic.Field(3, ge=1, le=8, description="S: S x S samples on edge pixels")
    points: int = pydantic.Field(16384, ge=0, description="surface points (0: no points.ply)")
    depth: bool = True
    normals: bool = True
    camera_layout: Literal["random", "protocol", "zero123pp", "ring24"] = "random"
    zero123pp_elevations: tuple[float, float] = pydantic.Field(
        (30.0, -20.0),
        description="absolute elevations of the Zero123++ views, alternating from azimuth +30: "
        "v1.1 (30, -20), v1.2 (20, -10) (sudo-ai/zero123plus README)",
    )
    asymmetric: bool = pydantic.Field(
        False, description="add asymmetric structure (gs_core.procedural.asymmetry)"
    )
    split: Literal["auto", "train", "val", "test"] = "auto"
    split_fractions: dict[str, float] = pydantic.Field(
        default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1}
    )

    presets = {
        "eval": {
            "objects": 2 * len(CATEGORIES),
            "views": 16,
            "resolution": 256,
            "seed": EVAL_SEED,
            "camera_layout": "protocol",
            "split": "test",
        },
        "eval-hard": {
            "objects": 2 * len(CATEGORIES),
            "views": 16,
            "resolution": 256,
            "seed": EVAL_HARD_SEED,
            "camera_layout": "protocol",
            "split": "test",
            "asymmetric": True,
        },
        "small": {"objects": 48, "views": 24, "resolution": 64, "points": 4096},
        "tiny": {"objects": 4, "views": 6, "resolution": 32, "points": 512, "antialias": 2},
    }

    @pydantic.model_validator(mode="after")
    def _check(self):
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(
                f"categories: unknown {unknown or 'empty list'} (available: {', '.join(CATEGORIES)})"
            )
        lo, hi = self.elevation_range
        if not -89.9 <= lo <= hi <= 89.9:
            raise ValueError(
                f"elevation_range: expected -89.9 <= low <= high <= 89.9, got {self.elevation_range}"
            )
        if self.radius <= self.object_radius * 1.05:
            raise ValueError(
                f"radius {self.radius} puts the camera inside the object ball (object_radius {self.object_radius})"
            )
        return self


def object_id(category: str, index: int) -> str:
    return f"{category}_{index:05d}"


def camera_angles(cfg: ProceduralConfig, index: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Azimuths, elevations (degrees) and group names of object ``index``'s views."""
    rng = np.random.default_rng([cfg.seed, index, 1])
    lo, hi = cfg.elevation_range
    if cfg.camera_layout in ("zero123pp", "ring24"):
        return _set_angles(cfg, rng)
    az = rng.uniform(0.0, 360.0, cfg.views)
    el = rng.uniform(lo, hi, cfg.views)
    groups = ["random"] * cfg.views
    if cfg.camera_layout == "protocol":
        from gs_core.evaluation.protocols import RING15, ZERO123PP

        fixed = (
            [(0.0, 0.0, "input")]
            + [(a, e, "ring15") for a, e in RING15]
            + [(a, e, "zero123pp") for a, e in ZERO123PP]
        )
        az = np.concatenate([[a for a, _, _ in fixed], az])
        el = np.concatenate([[e for _, e, _ in fixed], el])
        groups = [g for _, _, g in fixed] + groups
    return az, el, groups


def views_per_set(cfg: ProceduralConfig) -> int:
    """Views in one set of the ``zero123pp`` (input + 6) or ``ring24`` layout, else 1."""
    return {"zero123pp": 7, "ring24": 24}.get(cfg.camera_layout, 1)


def _set_angles(
    cfg: ProceduralConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    lo, hi = cfg.elevation_range
    per = views_per_set(cfg)
    az, el, groups = [], [], []
    for _ in range(max(1, cfg.views // per)):
        a0 = float(rng.uniform(0.0, 360.0))
        e0 = float(rng.uniform(lo, hi))
        if cfg.camera_layout == "zero123pp":
            az += [a0] + [(a0 + d) % 360.0 for d in ZERO123PP_AZIMUTHS]
            high, low = cfg.zero123pp_elevations
            el += [e0] + [high if k % 2 == 0 else low for k in range(6)]
            groups += ["input"] + ["zero123pp"] * 6
        else:
            az += [(a0 + RING24_STEP_DEG * k) % 360.0 for k in range(per)]
            el += [e0] * per
            groups += ["ring24"] * per
    return np.asarray(az), np.asarray(el), groups


def _render_object(task: dict[str, Any]) -> tuple[str, str, int, float]:
    """Worker: build, ray cast and write one object (numpy only, no torch); returns its id,
    category, number of views and the CPU seconds it took."""
    cpu0 = time.process_time()
    from gs_core.data.writer import write_object
    from gs_core.procedural.raycast import render_views
    from gs_core.procedural.sampling import sample_surface
    from gs_core.procedural.templates import make_object

    cfg = ProceduralConfig.model_validate(task["config"])
    i, cat = task["index"], task["category"]
    obj = make_object(
        cat,
        np.random.default_rng([cfg.seed, i, 0]),
        radius=cfg.object_radius,
        asymmetric=cfg.asymmetric,
    )
    c2w_cv, K = task["c2w_cv"], task["K"]
    out = render_views(obj, c2w_cv, K, cfg.resolution, cfg.resolution, antialias=cfg.antialias)
    pts = cols = None
    if cfg.points > 0:
        pts, cols, _ = sample_surface(obj, cfg.points, np.random.default_rng([cfg.seed, i, 2]))
    oid = object_id(cat, i)
    meta = {
        "category": cat,
        "generator": "gs3d data procedural",
        "seed": cfg.seed,
        "index": i,
        "object_radius": cfg.object_radius,
        "parts": [p.name for p in obj.parts],
    }
    if cfg.asymmetric:  # only when set, so datasets of symmetric objects keep their bytes
        meta["asymmetric"] = True
    write_object(
        Path(task["root"]) / oid,
        out.rgba,
        c2w_cv @ GL_TO_CV,
        fl_x=float(K[0, 0, 0]),
        fl_y=float(K[0, 1, 1]),
        cx=float(K[0, 0, 2]),
        cy=float(K[0, 1, 2]),
        depth=out.depth if cfg.depth else None,
        normals=out.normals if cfg.normals else None,
        points=pts,
        point_colors=cols,
        meta=meta,
        frame_extras=task["extras"],
        # The root is generate()'s own temporary dataset folder: no other process's
        # temporaries can be in it, and listing it once per object was quadratic in the
        # objects (30,000 ran at a quarter of 3,000's views per second).
        clean_stale=False,
    )
    return oid, cat, int(out.rgba.shape[0]), time.process_time() - cpu0


def _tasks(cfg: ProceduralConfig, root: Path) -> list[dict[str, Any]]:
    import torch

    from gs_core.cameras import Cameras

    tasks = []
    dump = cfg.model_dump()
    for i in range(cfg.objects):
        cat = cfg.categories[i % len(cfg.categories)]
        az, el, groups = camera_angles(cfg, i)
        cams = Cameras.orbit(
            az,
            el,
            radius=cfg.radius,
            fov_deg=cfg.fov_deg,
            width=cfg.resolution,
            height=cfg.resolution,
            dtype=torch.float64,
        )
        extras = [
            {
                "azimuth": round(float(a), 6),
                "elevation": round(float(e), 6),
                "radius": cfg.radius,
                "group": g,
            }
            for a, e, g in zip(az, el, groups, strict=True)
        ]
        if views_per_set(cfg) > 1:
            for k, extra in enumerate(extras):
                extra["set"] = k // views_per_set(cfg)
        tasks.append(
            {
                "config": dump,
                "index": i,
                "category": cat,
                "root": str(root),
                "c2w_cv": cams.camtoworlds.numpy(),
                "K": cams.Ks.numpy(),
                "extras": extras,
            }
        )
    return tasks


def _assign_splits(cfg: ProceduralConfig, ids_by_cat: dict[str, list[str]]) -> dict[str, list[str]]:
    from gs_core.data.layout import split_ids

    if cfg.split != "auto":
        return {cfg.split: sorted(i for ids in ids_by_cat.values() for i in ids)}
    splits: dict[str, list[str]] = {name: [] for name in cfg.split_fractions}
    for k, (_, ids) in enumerate(sorted(ids_by_cat.items())):
        # Stratified by category, so every split sees every category when there are enough.
        for name, part in split_ids(ids, cfg.split_fractions, seed=cfg.seed * 1000 + k).items():
            splits[name].extend(part)
    return {name: sorted(ids) for name, ids in splits.items()}


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def generate(
    cfg: ProceduralConfig,
    out: str | Path,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the dataset into ``out`` (atomically: the folder appears when it is complete).

    ``workers`` processes render objects in parallel (0: in this process; default: one per
    core, at most 8). Returns a summary with the throughput in views per second.
    """
    from gs_core.data.layout import write_categories, write_dataset_meta, write_splits

    out = Path(out)
    check_overwrite(out, overwrite)
    workers = default_workers() if workers is None else int(workers)
    if workers < 0:
        raise ValidationError("workers", "an integer >= 0", str(workers))
    t0 = time.perf_counter()
    ids_by_cat: dict[str, list[str]] = {}
    n_views = 0
    cpu = 0.0
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        tasks = _tasks(cfg, tmp)
        total_views = sum(len(t["extras"]) for t in tasks)
        bar = _progress(progress, total_views)
        try:
            if workers == 0 or len(tasks) == 1:
                for oid, cat, nv, c in map(_render_object, tasks):
                    ids_by_cat.setdefault(cat, []).append(oid)
                    n_views += nv
                    cpu += c
                    bar.advance(nv)
            else:
                # fork when the platform has it (workers start in milliseconds and only use
                # numpy); spawn elsewhere.
                method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
                with mp.get_context(method).Pool(min(workers, len(tasks))) as pool:
                    for oid, cat, nv, c in pool.imap_unordered(_render_object, tasks):
                        ids_by_cat.setdefault(cat, []).append(oid)
                        n_views += nv
                        cpu += c
                        bar.advance(nv)
        finally:
            bar.stop()
        splits = _assign_splits(cfg, ids_by_cat)
        write_splits(tmp, splits)
        write_categories(tmp, {c: sorted(ids) for c, ids in sorted(ids_by_cat.items())})
        write_dataset_meta(
            tmp,
            {
                "name": _dataset_name(cfg),
                "generator": "gs3d data procedural",
                "config": cfg.model_dump(),
                "num_objects": cfg.objects,
                "views_per_object": len(tasks[0]["extras"]),
            },
        )
    dt = time.perf_counter() - t0
    return {
        "out": str(out),
        "objects": cfg.objects,
        "views": n_views,
        "seconds": dt,
        "views_per_second": n_views / dt if dt > 0 else math.inf,
        "cpu_seconds": cpu,
        "splits": {k: len(v) for k, v in splits.items()},
    }


def _dataset_name(cfg: ProceduralConfig) -> str:
    if cfg.camera_layout == "protocol" and (cfg.seed, cfg.asymmetric) == (EVAL_SEED, False):
        return "procedural-eval"
    if cfg.camera_layout == "protocol" and (cfg.seed, cfg.asymmetric) == (EVAL_HARD_SEED, True):
        return "procedural-eval-hard"
    return "procedural"


class _NoBar:
    def advance(self, n: int) -> None:
        pass

    def stop(self) -> None:
        pass


class _RichBar:
    def __init__(self, total: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(
            TextColumn("rendering views"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._p.add_task("views", total=total)
        self._p.start()

    def advance(self, n: int) -> None:
        self._p.advance(self._task, n)

    def stop(self) -> None:
        self._p.stop()


def _progress(enabled: bool, total: int):
    return _RichBar(total) if enabled else _NoBar()
