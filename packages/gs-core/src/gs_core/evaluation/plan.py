"""What an evaluation will do, checked against the dataset before any model is loaded.

:func:`plan_evaluation` reads the split, every object's ``transforms.json`` and image sizes
(headers only), chooses each object's input and protocol views, refuses an existing report and
builds the metrics. A protocol whose views a dataset lacks, a missing split, views that do not
scale to the evaluation resolution or an unknown metric thus fail in one line within seconds,
instead of after a model took minutes to load or half the objects were scored. Metrics whose
weights are absent and an evaluation resolution above the data's are reported as warnings at
the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from gs_core.data.layout import read_split
from gs_core.data.transforms import ObjectRecord, read_transforms
from gs_core.errors import GS3DError
from gs_core.evaluation.metrics import LoadedMetrics, load_metrics
from gs_core.evaluation.protocols import ViewSelection, select_views
from gs_core.io.atomic import check_overwrite

REPORT_NAME = "results.json"


@dataclass
class EvalPlan:
    """The objects, their views and the metrics of one evaluation (see :func:`plan_evaluation`)."""

    root: Path
    split: str
    object_ids: list[str]
    records: dict[str, ObjectRecord]
    selections: dict[str, ViewSelection]
    metrics: LoadedMetrics
    warnings: list[str] = field(default_factory=list)


def plan_evaluation(
    root: str | Path,
    split: str,
    config,
    categories: list[str] | None = None,
    device: str | torch.device = "cpu",
    out: str | Path | None = None,
    overwrite: bool = False,
) -> EvalPlan:
    """Check ``config`` (an :class:`~gs_core.evaluation.harness.EvalConfig`) against ``split``
    of the dataset at ``root`` and build its metrics for ``device``.

    Raises :class:`GS3DError` naming the file or option for: an existing ``out/results.json``
    without ``overwrite``, a missing split or category, an unreadable ``transforms.json``,
    views that are not square (the resolution is a square side) or do not share an aspect, a
    protocol view no frame matches, an unknown or explicitly requested but unavailable metric,
    ``geometry`` on an object that is not from the procedural world (no ``gs3d`` seed /
    category / index in its ``transforms.json``), ``iou_resolution`` without ``geometry``.
    """
    from gs_core.data.views import target_size
    from gs_core.evaluation.world_geometry import check_procedural

    root = Path(root)
    if getattr(config, "iou_resolution", None) is not None and not config.geometry:
        raise GS3DError("--iou-resolution needs --geometry (volume IoU is a geometry metric)")
    if out is not None:
        check_overwrite(Path(out) / REPORT_NAME, overwrite)
    ids = read_split(root, split, categories)
    if config.max_objects is not None:
        ids = ids[: config.max_objects]
    records: dict[str, ObjectRecord] = {}
    selections: dict[str, ViewSelection] = {}
    smaller: dict[str, tuple[int, int]] = {}  # objects whose views are below the resolution
    for oid in ids:
        rec = read_transforms(root / oid)
        if getattr(config, "geometry", False):
            check_procedural(root / oid, rec.meta)
        native = rec.image_size(rec.frames[0])
        size = target_size(rec, config.resolution)
        # Every frame must scale to the evaluation size; this reads image headers, not pixels.
        cams = rec.cameras(size=size)
        selections[oid] = select_views(
            cams.camtoworlds[:, :3, 3].double().numpy(),
            config.protocol,
            input_index=config.input_index,
            n_random=config.n_random,
            seed=config.seed,
            tolerance_deg=config.tolerance_deg,
            object_id=oid,
        )
        records[oid] = rec
        if config.resolution > min(native):
            smaller[oid] = native
    warnings = []
    if smaller:
        sizes = sorted({f"{w}x{h}" for w, h in smaller.values()})
        warnings.append(
            f"--resolution {config.resolution} exceeds the views of {len(smaller)} of {len(ids)} "
            f"object(s) in {root} ({', '.join(sizes)}): ground truth is upsampled, so scores are "
            "not comparable with an evaluation at the data's resolution"
        )
    metrics = load_metrics(config.metrics, torch.device(device))
    if not metrics.columns():
        raise GS3DError(
            "no metric available to evaluate (gs-core registers psnr and ssim; is the registry broken?)"
        )
    for name, why in metrics.unavailable.items():
        warnings.append(f"metric {name} unavailable: {why}")
    return EvalPlan(root, split, ids, records, selections, metrics, warnings)


__all__ = ["REPORT_NAME", "EvalPlan", "plan_evaluation"]
