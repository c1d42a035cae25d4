"""``gs3d eval``: one evaluation protocol for every method.

For each object of a dataset split: pick the input view and the protocol's target views
(:mod:`gs_core.evaluation.protocols`), get a prediction from a predictor (a method run on the
input view, timed, or a folder of PLY / GLB / OBJ files), express the target cameras in the
prediction's frame, render, and score every registered metric on render-vs-ground-truth and/or
render-vs-input pairs. Images are composited on one background (white by default) for both
predictions and ground truth.

What is scored (``score``): ``gaussians`` (rendered by ``render``), ``mesh`` (rendered by
``render_mesh``, vertex colours or texture, else grey) or ``auto``: the Gaussians when the
prediction has them, else its mesh. The same protocols, cameras and metrics apply to both.

Geometry (``geometry``): per object, the scored shape is moved into the world frame and
compared with the procedural world's exact geometry
(:mod:`gs_core.evaluation.world_geometry`): Chamfer, F-score at ``FSCORE_THRESHOLD`` (0.05),
normal consistency, and for meshes volume IoU with ``iou_resolution``. Gaussians are scored
through their centres. The report holds them under ``geometry`` per object and in the mean.

Azimuth alignment (``align_azimuth``): methods that treat the input's azimuth as hidden (DD3G
and the methods it compares with) need not put the object's front at azimuth 0; per prediction
(and seed) the azimuth offset whose render best matches the input view is searched
(:func:`~gs_core.evaluation.alignment.search_azimuth_offset`) and every target camera is
orbited by it about the prediction frame's y axis (:func:`~gs_core.evaluation.alignment.rotate_about_y`);
the geometry metrics see the prediction turned the same way. The report keeps each offset.

References (``references``): per object, the blank background and the input image copied to
every target view are scored like a prediction (PSNR / SSIM only; targets that are the input
view itself left out); the report's ``references`` holds their means, the bar a method's
numbers should be read against.

Prediction frames (``frame``):
  ``world``   the dataset's world frame (e.g. ``gs3d fit`` outputs);
  ``azimuth`` the world rotated so the input view has azimuth 0 — DD3G's protocol of rotating a
              generation so its 0-degree view aligns with the input, and AGG's output space;
  ``camera``  the input camera moved to the canonical pose (LGM-style normalisation).

Outputs in ``out``: ``results.json`` (per object and averaged), ``results.md`` (a table) and
``sheets/<object>.png`` (input, ground truth and prediction per target view).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
import torch

from gs_core.cameras import Cameras
from gs_core.config import Config, Resolution
from gs_core.data.backgrounds import NAMED
from gs_core.data.spaces import space_transform
from gs_core.data.views import load_object_views
from gs_core.errors import GS3DError, ValidationError
from gs_core.evaluation.alignment import rotate_about_y, search_azimuth_offset
from gs_core.evaluation.metrics import LoadedMetrics, score
from gs_core.evaluation.plan import REPORT_NAME, EvalPlan, plan_evaluation
from gs_core.evaluation.predictors import Prediction
from gs_core.evaluation.references import REFERENCE_NAMES, score_references
from gs_core.evaluation.world_geometry import prediction_geometry
from gs_core.io.atomic import atomic_write_text

# The no-3D references are scored with the pixel metrics only: they cost nothing and need no
# pretrained network.
REFERENCE_METRICS = ("psnr", "ssim")


class EvalConfig(Config):
    """Options of the evaluation harness."""

    # ring12 last: the choices as listed before it came keep their order in error messages.
    protocol: Literal["ring15", "zero123pp", "gso", "random", "all", "ring12"] = pydantic.Field(
        "gso",
        description="target views (gs_core.evaluation.protocols): ring15 / zero123pp / gso "
        "(GECO), ring12 (DD3G: 12 views 30 degrees apart at elevation 0), random, all",
    )
    resolution: Resolution = 256
    frame: Literal["world", "azimuth", "camera"] = "world"
    input_index: int | None = pydantic.Field(
        None, ge=0, description="input frame (default: nearest az 0 / el 0)"
    )
    n_random: int = pydantic.Field(16, gt=0, description="views of the random protocol")
    seed: int = 0
    tolerance_deg: float = pydantic.Field(2.0, gt=0)
    background: Literal["white", "black", "gray"] = "white"
    metrics: list[str] | None = None
    sheets: bool = True
    max_objects: int | None = pydantic.Field(None, gt=0)
    render_chunk: int = pydantic.Field(8, gt=0)
    backend: Literal["auto", "torch", "gsplat"] = "auto"
    seeds: int | None = pydantic.Field(
        None,
        gt=0,
        description="run the method with seeds 0..N-1 and report the mean and the spread (std)",
    )
    score: Literal["auto", "gaussians", "mesh"] = pydantic.Field(
        "auto", description="what to score: Gaussians, mesh, or auto (Gaussians if any)"
    )
    geometry: bool = pydantic.Field(
        False, description="geometry metrics against the procedural world's exact geometry"
    )
    iou_resolution: int | None = pydantic.Field(
        None, ge=2, description="volume IoU of meshes on this grid (needs geometry)"
    )
    geometry_points: int = pydantic.Field(
        50_000, gt=0, description="surface samples per point set of the geometry metrics"
    )
    references: bool = pydantic.Field(
        True,
        description="also score two predictions that know no 3D on the same targets (PSNR / "
        "SSIM columns only): the blank background, and the input image shown at every target. "
        "On the procedural world many objects look alike from every side, so a method must "
        "clear the second to show it learnt anything about the unseen sides",
    )
    align_azimuth: bool = pydantic.Field(
        False,
        description="orbit the target cameras by the azimuth offset that best matches the input "
        "view (searched per prediction, gs_core.evaluation.alignment); DD3G's paper aligns each "
        "sample's 0-degree view with the input by hand (Sec. IV-A), this searches it instead",
    )

    @classmethod
    def from_options(cls, **fields: Any) -> EvalConfig:
        """The config of command-line values: a bad one raises one :class:`ValidationError`
        naming its option (``n_random`` is ``--n-random``), not pydantic's multi-line report."""
        try:
            return cls(**fields)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            name = str(err["loc"][0]) if err["loc"] else "config"
            msg = str(err["msg"])
            expected = msg[len("Input should be ") :] if msg.startswith("Input should be ") else msg
            raise ValidationError(
                f"--{name.replace('_', '-')}", expected, repr(err.get("input"))
            ) from None


@dataclass
class ObjectResult:
    object_id: str
    category: str
    input_index: int
    targets: dict[str, list[int]]
    scores: dict[str, dict[str, float]]  # column -> group -> mean
    seconds: float | None
    timings: dict[str, float]
    # With seeds: ``scores`` is the mean over seeds, these hold each seed's scores and the std.
    seeds: list[int] | None = None
    per_seed: list[dict[str, dict[str, float]]] | None = None
    scores_std: dict[str, dict[str, float]] | None = None
    scored: str = "gaussians"  # "gaussians" or "mesh"
    # With geometry: name -> value (mean over seeds), and per seed / std with seeds.
    geometry: dict[str, float] | None = None
    geometry_per_seed: list[dict[str, float]] | None = None
    geometry_std: dict[str, float] | None = None
    # With align_azimuth: the offset (degrees) of each run (one, or one per seed).
    azimuth_offsets: list[float] | None = None
    # With references: reference name -> column -> group -> score (no prediction involved).
    references: dict[str, dict[str, dict[str, float]]] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "object_id": self.object_id,
            "category": self.category,
            "input_index": self.input_index,
            "targets": self.targets,
            "scores": self.scores,
            "seconds": self.seconds,
            "timings": self.timings,
            "scored": self.scored,
        }
        if self.geometry is not None:
            out["geometry"] = self.geometry
        if self.azimuth_offsets is not None:
            out["azimuth_offset_deg"] = self.azimuth_offsets
        if self.references is not None:
            out["references"] = self.references
        if self.seeds is not None:
            out["seeds"] = self.seeds
            out["per_seed"] = self.per_seed
            out["scores_std"] = self.scores_std
            if self.geometry is not None:
                out["geometry_per_seed"] = self.geometry_per_seed
                out["geometry_std"] = self.geometry_std
        return out


@dataclass
class ObjectRenders:
    """What one object was scored on, for callers that show it (``gs3d compare``'s page).

    ``input_rgb [H, W, 3]``, ``ground_truth`` and ``renders`` ``[K, H, W, 3]`` (the first seed's
    renders), all float in [0, 1] on the evaluation background; the K target views are ordered
    group by group as ``groups`` lists them.
    """

    object_id: str
    input_rgb: torch.Tensor
    ground_truth: torch.Tensor
    renders: torch.Tensor
    groups: dict[str, list[int]]


def _composite(rgba: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    return rgba[..., :3] * rgba[..., 3:] + bg * (1 - rgba[..., 3:])


@torch.no_grad()
def render_targets(
    gaussians, cameras: Cameras, background: torch.Tensor, chunk: int = 8, backend: str = "auto"
) -> torch.Tensor:
    """Renders ``[K, H, W, 3]`` (clamped to [0, 1]) of ``gaussians`` from ``cameras`` (K)."""
    from gs_core.rendering import render

    out = []
    for a in range(0, cameras.n_cameras, chunk):
        cams = cameras.select(slice(a, a + chunk)).to(gaussians.device)
        r = render(gaussians, cams, background=background.to(gaussians.device), backend=backend)
        out.append(r.rgb.clamp(0, 1).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def render_mesh_targets(
    mesh, cameras: Cameras, background: torch.Tensor, chunk: int = 8
) -> torch.Tensor:
    """Renders ``[K, H, W, 3]`` (clamped to [0, 1]) of ``mesh`` from ``cameras`` (K) with the
    mesh rasteriser (antialiased silhouettes, as the Gaussian renders are soft-edged)."""
    from gs_core.rendering.mesh_render import render_mesh

    dev = mesh.vertices.device
    out = []
    for a in range(0, cameras.n_cameras, chunk):
        cams = cameras.select(slice(a, a + chunk)).to(dev)
        r = render_mesh(mesh, cams, background=background.to(dev), attributes=("rgb",))
        out.append(r.rgb.clamp(0, 1).float().cpu())
    return torch.cat(out)


def _mesh_to(mesh, device: torch.device):
    from gs_core.mesh import Mesh

    if mesh.vertices.device == device:
        return mesh
    return Mesh(
        *(
            None if t is None else t.to(device)
            for t in (mesh.vertices, mesh.faces, mesh.vertex_colors, mesh.uvs, mesh.texture)
        )
    )


def _pick(pred: Prediction, score: str, object_id: str) -> tuple[str, Any]:
    """The (kind, shape) of ``pred`` to score under ``score`` (see the module docstring)."""
    if score == "auto":
        score = "gaussians" if pred.gaussians is not None else "mesh"
    shape = pred.gaussians if score == "gaussians" else pred.mesh
    if shape is None:
        has = "a mesh" if pred.mesh is not None else "Gaussians"
        raise GS3DError(
            f"--score {score}: the prediction for {object_id} has no "
            f"{'Gaussians' if score == 'gaussians' else 'mesh'}, only {has}"
        )
    return score, shape


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _std(values: list[float]) -> float:
    """Sample standard deviation (ddof 1) of the finite values; 0 for a single value."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan")
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def _geo_reduce(rows: list[dict[str, float]], reduce) -> dict[str, float]:
    """name -> ``reduce`` of each geometry score over ``rows`` (seeds or objects)."""
    return {k: reduce([r.get(k) for r in rows]) for k in rows[0]}


def _over_seeds(per_seed: list[dict[str, dict[str, float]]], reduce) -> dict[str, dict[str, float]]:
    """column -> group -> ``reduce`` of that score over the seeds."""
    return {
        col: {g: reduce([s[col][g] for s in per_seed]) for g in groups}
        for col, groups in per_seed[0].items()
    }


def _yaw(offset_deg: float) -> np.ndarray:
    """``[4, 4]`` rotation about y by ``offset_deg``: the world motion of :func:`rotate_about_y`'s
    cameras (``c2w' = R c2w``)."""
    a = math.radians(offset_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1]], dtype=np.float64)


def _protocol_hint(protocol: str) -> str:
    if protocol == "ring12":
        return (
            "a procedural dataset made with camera_layout=ring24 and elevation_range=[0, 0] has "
            "them (the eval preset does not); or use --protocol random / all"
        )
    return "gs3d data procedural --preset eval renders them; or use --protocol random / all"


def plan_protocol_evaluation(
    root: str | Path,
    split: str,
    config: EvalConfig,
    categories: list[str] | None = None,
    device: str | torch.device = "cpu",
    out: str | Path | None = None,
    overwrite: bool = False,
) -> EvalPlan:
    """:func:`~gs_core.evaluation.plan.plan_evaluation`, with a dataset that lacks the views of a
    fixed-camera protocol refused in one line naming the dataset, the split and the protocol."""
    try:
        return plan_evaluation(root, split, config, categories, device, out, overwrite)
    except GS3DError as e:
        marker = f"protocol '{config.protocol}' needs a view"
        if marker not in str(e):
            raise
        detail = str(e).partition(". Render")[0]
        raise GS3DError(
            f"dataset {root} (split {split}) lacks the views of protocol '{config.protocol}': "
            f"{detail}; {_protocol_hint(config.protocol)}"
        ) from None


def evaluate(
    predictor: Callable[[str, torch.Tensor], Prediction],
    root: str | Path,
    split: str,
    config: EvalConfig | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    label: str = "",
    categories: list[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    plan: EvalPlan | None = None,
    on_object: Callable[[ObjectRenders], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``predictor`` on ``split`` of the dataset at ``root``; see the module docstring.

    ``predictor(object_id, input_rgba [1, 4, H, W]) -> Prediction``; with ``config.seeds = N``
    it is called as ``predictor(object_id, input_rgba, seed=s)`` for ``s`` in 0..N-1, each
    object's ``scores`` are the mean over seeds, and the report adds ``per_seed`` /
    ``scores_std`` per object and ``mean_per_seed`` / ``std`` (the spread of the dataset mean
    over seeds). Returns the report dict (also written to ``out/results.json`` with
    ``out/results.md`` and contact sheets; the sheets show seed 0).

    Everything that can be checked without predictions is checked first
    (:func:`~gs_core.evaluation.plan.plan_evaluation`); ``plan`` passes a plan made earlier
    with the same arguments, as ``gs3d eval`` does before it loads a model. ``on_object`` is
    called after each object is scored with its :class:`ObjectRenders`.
    """
    cfg = config or EvalConfig()
    device = torch.device(device)
    out = Path(out) if out is not None else None
    if plan is None:
        plan = plan_protocol_evaluation(root, split, cfg, categories, device, out, overwrite)
    ids = plan.object_ids
    metrics = plan.metrics
    columns = metrics.columns()
    # A predictor may name the inputs it lacks before any object is rendered (a PLY folder).
    require = getattr(predictor, "require", None)
    if callable(require):
        require(ids)
    bg = torch.tensor(NAMED[cfg.background], dtype=torch.float32)
    results: list[ObjectResult] = []
    ref_metrics = {
        col: metrics.fns[name]
        for col, name, pair in columns
        if name in REFERENCE_METRICS and pair == "render-gt"
    }
    for k, oid in enumerate(ids):
        if progress is not None:
            progress(k, len(ids), oid)
        views = load_object_views(plan.records[oid], cfg.resolution)
        c2w = views.cameras.camtoworlds.double().numpy()
        sel = plan.selections[oid]
        rgba = torch.from_numpy(views.rgba).float() / 255
        input_rgba = rgba[sel.input_index].permute(2, 0, 1)[None]
        # Prediction frame P relates to the world by p_world = A p_P, A = T^-1 for the frame's
        # world -> frame transform T; a world camera V sees the prediction as V A.
        T = space_transform(cfg.frame, c2w[sel.input_index])
        A = torch.from_numpy(np.linalg.inv(T)).float()
        tgt = torch.tensor(sel.targets)
        cams = views.cameras.select(tgt)
        cams = Cameras(cams.viewmats @ A, cams.Ks, cams.width, cams.height)
        gt = _composite(rgba[tgt], bg)
        inp = _composite(rgba[sel.input_index], bg)
        in_cam = views.cameras.select(torch.tensor([sel.input_index]))
        in_cam = Cameras(in_cam.viewmats @ A, in_cam.Ks, in_cam.width, in_cam.height)
        offsets: list[float] = []
        seeds = list(range(cfg.seeds)) if cfg.seeds is not None else None
        preds: list[Prediction] = []
        per_seed: list[dict[str, dict[str, float]]] = []
        geo_per_seed: list[dict[str, float]] = []
        reference = None
        if cfg.geometry:
            from gs_core.procedural.surface import procedural_reference

            reference = procedural_reference(
                plan.root / oid, points=cfg.geometry_points, sample_seed=cfg.seed
            )
        renders = None  # the first run's, for the contact sheet
        kind = "gaussians"
        for seed in seeds if seeds is not None else [None]:
            pred = (
                predictor(oid, input_rgba)
                if seed is None
                else predictor(oid, input_rgba, seed=seed)
            )
            kind, shape = _pick(pred, cfg.score, oid)
            if kind == "mesh":
                shape = _mesh_to(shape, device)

                def draw(c, shape=shape):
                    return render_mesh_targets(shape, c, bg, cfg.render_chunk)
            else:
                shape = shape.to(device)

                def draw(c, shape=shape):
                    return render_targets(shape, c, bg, cfg.render_chunk, cfg.backend)

            run_cams, to_world = cams, np.linalg.inv(T)
            if cfg.align_azimuth:
                offset = search_azimuth_offset(draw, in_cam, inp).offset_deg
                offsets.append(offset)
                run_cams = rotate_about_y(cams, offset)
                # Cameras orbited by +offset see the prediction as fixed cameras see it turned
                # by -offset; the geometry metrics score it turned so.
                to_world = to_world @ _yaw(-offset)
            r = draw(run_cams)
            per_seed.append(_score_views(r, gt, inp, columns, metrics, sel.groups, device))
            if reference is not None:
                geo_per_seed.append(
                    prediction_geometry(
                        shape,
                        to_world,
                        reference,
                        cfg.geometry_points,
                        cfg.iou_resolution,
                        seed=cfg.seed,
                    )
                )
            preds.append(pred)
            renders = r if renders is None else renders
        secs = [p.seconds for p in preds if p.seconds is not None]
        timing_keys = dict.fromkeys(k for p in preds for k in p.timings)
        res = ObjectResult(
            object_id=oid,
            category=views.category,
            input_index=sel.input_index,
            targets=sel.groups,
            scores=per_seed[0] if seeds is None else _over_seeds(per_seed, _mean),
            seconds=float(np.mean(secs)) if secs else None,
            timings={
                k: float(np.mean([p.timings[k] for p in preds if k in p.timings]))
                for k in timing_keys
            },
            seeds=seeds,
            per_seed=per_seed if seeds is not None else None,
            scores_std=_over_seeds(per_seed, _std) if seeds is not None else None,
            scored=kind,
            geometry=_geo_reduce(geo_per_seed, _mean) if geo_per_seed else None,
            geometry_per_seed=geo_per_seed if geo_per_seed and seeds is not None else None,
            geometry_std=_geo_reduce(geo_per_seed, _std) if geo_per_seed and seeds else None,
            azimuth_offsets=offsets if cfg.align_azimuth else None,
            references=(
                score_references(gt, inp, bg, ref_metrics, sel.groups, device)
                if cfg.references and ref_metrics
                else None
            ),
        )
        results.append(res)
        if on_object is not None:
            on_object(ObjectRenders(oid, inp, gt, renders, sel.groups))
        if out is not None and cfg.sheets:
            _save_sheet(
                out / "sheets" / f"{oid}.png", rgba[sel.input_index], gt, renders, bg, sel.groups
            )
    report = _report(results, metrics, cfg, root, split, label)
    refs = [r.references for r in results if r.references is not None]
    if refs:
        report["references"] = {
            name: {
                c: {
                    g: _mean([r[name][c].get(g) for r in refs])
                    for g in sorted({g for r in refs for g in r[name][c]})
                }
                for c in refs[0][name]
            }
            for name in REFERENCE_NAMES
        }
    if out is not None:
        atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=2) + "\n")
        atomic_write_text(out / "results.md", markdown_table(report))
    return report


def _score_views(
    renders: torch.Tensor,
    gt: torch.Tensor,
    inp: torch.Tensor,
    columns,
    metrics: LoadedMetrics,
    groups: dict[str, list[int]],
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """column -> group -> mean score of ``renders [K, H, W, 3]`` against ``gt [K, H, W, 3]`` or
    the input ``inp [H, W, 3]`` (K views ordered group by group, as ``groups`` lists them)."""
    per_view: dict[str, torch.Tensor] = {}
    for col, name, pair in columns:
        fn = metrics.fns[name]
        ref = gt if pair == "render-gt" else inp[None].expand_as(renders)
        per_view[col] = score(fn, renders.to(device), ref.to(device))
    scores: dict[str, dict[str, float]] = {}
    offset = 0
    group_slices = {}
    for gname, gidx in groups.items():
        group_slices[gname] = slice(offset, offset + len(gidx))
        offset += len(gidx)
    for col, vals in per_view.items():
        scores[col] = {g: float(vals[s].mean()) for g, s in group_slices.items()}
        if len(group_slices) > 1:
            scores[col]["all"] = float(vals.mean())
    return scores


def _report(
    results: list[ObjectResult], metrics: LoadedMetrics, cfg: EvalConfig, root, split, label
) -> dict[str, Any]:
    cols = sorted({c for r in results for c in r.scores})
    groups = sorted({g for r in results for s in r.scores.values() for g in s})
    mean: dict[str, Any] = {
        c: {g: _mean([r.scores[c].get(g) for r in results]) for g in groups} for c in cols
    }
    secs = [r.seconds for r in results if r.seconds is not None]
    mean["seconds"] = float(np.mean(secs)) if secs else None
    per_cat: dict[str, dict[str, float]] = {}
    for cat in sorted({r.category for r in results}):
        rs = [r for r in results if r.category == cat]
        g0 = "all" if "all" in groups else groups[0]
        per_cat[cat or "(none)"] = {c: _mean([r.scores[c].get(g0) for r in rs]) for c in cols}
    report = {
        "predictions": label,
        "dataset": str(root),
        "split": split,
        "config": cfg.model_dump(),
        "metrics": {
            n: {
                "higher_is_better": s.higher_is_better,
                "pairs": list(s.pairs),
                "summary": s.summary,
            }
            for n, s in metrics.specs.items()
            if n in metrics.fns
        },
        "unavailable_metrics": metrics.unavailable,
        "num_objects": len(results),
        "mean": mean,
        "per_category": per_cat,
        "objects": [r.to_json() for r in results],
    }
    if cfg.seeds is not None and results:
        # The spread a reader cares about is how much the benchmark number moves with the seed:
        # the dataset mean under each seed, then its std across seeds.
        n = cfg.seeds
        per_seed_mean = [
            {
                c: {g: _mean([r.per_seed[i][c].get(g) for r in results]) for g in groups}
                for c in cols
            }
            for i in range(n)
        ]
        report["seeds"] = list(range(n))
        report["mean_per_seed"] = per_seed_mean
        report["std"] = {
            c: {g: _std([m[c][g] for m in per_seed_mean]) for g in groups} for c in cols
        }
    geo = [r for r in results if r.geometry is not None]
    if geo:
        from gs_core.evaluation.geometry import FSCORE_THRESHOLD, MIN_OPACITY

        kinds = sorted({r.scored for r in geo})
        through = {
            "mesh": "area-uniform surface samples of the mesh",
            "gaussians": f"centres of the Gaussians with opacity >= {MIN_OPACITY}",
        }
        g_report: dict[str, Any] = {
            "reference": "procedural world's exact geometry (rebuilt from seed and index)",
            "fscore_threshold": FSCORE_THRESHOLD,
            "points": cfg.geometry_points,
            "iou_resolution": cfg.iou_resolution,
            "through": {k: through[k] for k in kinds},
            "mean": _geo_reduce([r.geometry for r in geo], _mean),
        }
        if cfg.seeds is not None:
            per_seed_geo = [
                _geo_reduce([r.geometry_per_seed[i] for r in geo], _mean) for i in range(cfg.seeds)
            ]
            g_report["mean_per_seed"] = per_seed_geo
            g_report["std"] = _geo_reduce(per_seed_geo, _std)
        report["geometry"] = g_report
    return report


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def markdown_table(report: dict[str, Any]) -> str:
    """Per-object scores and the mean as a markdown table (one column per metric and group)."""
    objs = report["objects"]
    cols = [c for c in report["mean"] if c != "seconds"]
    groups = sorted({g for c in cols for g in report["mean"][c]})
    headers = [f"{c} ({g})" if len(groups) > 1 else c for c in cols for g in groups]
    lines = [
        f"# gs3d eval: {report['predictions']}",
        "",
        f"dataset `{report['dataset']}`, split `{report['split']}`, protocol `{report['config']['protocol']}`, "
        f"{report['num_objects']} objects, {report['config']['resolution']}px, frame `{report['config']['frame']}`"
        + (", azimuth-aligned to the input" if report["config"].get("align_azimuth") else ""),
        "",
        "| object | " + " | ".join(headers) + " | seconds |",
        "|---" * (len(headers) + 2) + "|",
    ]
    for o in objs:
        vals = [_fmt(o["scores"].get(c, {}).get(g)) for c in cols for g in groups]
        lines.append(f"| {o['object_id']} | " + " | ".join(vals) + f" | {_fmt(o['seconds'])} |")
    mean = [_fmt(report["mean"][c].get(g)) for c in cols for g in groups]
    lines.append("| **mean** | " + " | ".join(mean) + f" | {_fmt(report['mean'].get('seconds'))} |")
    if "std" in report:
        std = [_fmt(report["std"].get(c, {}).get(g)) for c in cols for g in groups]
        n = len(report["seeds"])
        lines.append(f"| **std over {n} seeds** | " + " | ".join(std) + " | - |")
    for name, ref in report.get("references", {}).items():
        vals = [_fmt(ref.get(c, {}).get(g)) for c in cols for g in groups]
        lines.append(f"| *{REFERENCE_NAMES[name]}* | " + " | ".join(vals) + " | - |")
    if "geometry" in report:
        lines += _geometry_table(report)
    if report.get("unavailable_metrics"):
        lines += ["", "Unavailable metrics:"] + [
            f"- {k}: {v}" for k, v in report["unavailable_metrics"].items()
        ]
    return "\n".join(lines) + "\n"


def _geometry_table(report: dict[str, Any]) -> list[str]:
    geo = report["geometry"]
    names = list(geo["mean"])
    through = "; ".join(f"{k}: {v}" for k, v in geo["through"].items())
    lines = [
        "",
        f"## Geometry against the exact surface (F-score at {geo['fscore_threshold']}, "
        f"{geo['points']} points per set; {through})",
        "",
        "| object | scored | " + " | ".join(names) + " |",
        "|---" * (len(names) + 2) + "|",
    ]
    for o in report["objects"]:
        if "geometry" in o:
            vals = [_fmt(o["geometry"].get(n)) for n in names]
            lines.append(f"| {o['object_id']} | {o['scored']} | " + " | ".join(vals) + " |")
    lines.append("| **mean** | | " + " | ".join(_fmt(geo["mean"][n]) for n in names) + " |")
    if "std" in geo:
        n_seeds = len(report["seeds"])
        std = " | ".join(_fmt(geo["std"][n]) for n in names)
        lines.append(f"| **std over {n_seeds} seeds** | | " + std + " |")
    return lines


def _save_sheet(
    path: Path, input_rgba, gt, renders, bg, groups: dict[str, list[int]], per_row: int = 8
) -> None:
    from gs_core.imaging import contact_sheet, save_image

    inp = _composite(input_rgba, bg)
    blank = torch.ones_like(inp) * bg
    names = [g for g, idx in groups.items() for _ in idx]
    tiles, labels = [], []
    K = gt.shape[0]
    for a in range(0, K, per_row):
        b = min(a + per_row, K)
        pad = per_row - (b - a)
        tiles += [inp] + [gt[i] for i in range(a, b)] + [blank] * pad
        labels += ["input"] + [f"gt {names[i]}" for i in range(a, b)] + [""] * pad
        tiles += [blank] + [renders[i] for i in range(a, b)] + [blank] * pad
        labels += [""] + ["pred"] * (b - a) + [""] * pad
    save_image(
        path,
        contact_sheet([t.numpy() for t in tiles], ncols=per_row + 1, labels=labels),
        overwrite=True,
    )
