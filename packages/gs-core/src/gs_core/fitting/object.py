"""Fit one object folder of a ``transforms.json`` dataset and write ``gaussians.ply``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gs_core.data.transforms import GAUSSIANS_NAME, TRANSFORMS_NAME, ObjectRecord, read_transforms
from gs_core.data.views import load_object_views
from gs_core.errors import FileFormatError
from gs_core.fitting.config import FitConfig
from gs_core.fitting.fit import FitResult, fit_gaussians
from gs_core.io.atomic import check_overwrite
from gs_core.io.outputs import check_distinct_outputs


def holdout_split(n_views: int, every: int) -> tuple[list[int], list[int]]:
    """Train / held-out frame indices: every ``every``-th view is held out (3DGS's LLFF hold)."""
    if every <= 0 or n_views < 2:
        return list(range(n_views)), []
    held = [i for i in range(n_views) if i % every == every - 1]
    train = [i for i in range(n_views) if i not in held]
    return train, held


def input_files(record: ObjectRecord) -> dict[str, Path | None]:
    """The files a fit reads, by the name a message should give them."""
    files: dict[str, Path | None] = {TRANSFORMS_NAME: record.directory / TRANSFORMS_NAME}
    for fr in record.frames:
        files[f"frames[{fr.index}].file_path"] = fr.image_path
        files[f"frames[{fr.index}].mask_file_path"] = fr.mask_path
    files["points.ply"] = record.points_path
    return files


def fit_object(
    directory: str | Path,
    config: FitConfig | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    alpha_from_background: tuple[float, float, float] | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> FitResult:
    """Fit the object in ``directory`` and write a 3DGS PLY to ``out``.

    ``out`` defaults to ``directory/gaussians.ply`` (where the dataset loader finds per-object
    fits); ``out=False``-like ``""`` skips writing. Initialises from ``points.ply`` when the
    folder has one (``config.init="auto"``). Held-out PSNR/SSIM are in ``result.metrics``.
    """
    cfg = config or FitConfig()
    directory = Path(directory)
    record = read_transforms(directory)
    target = (
        Path(out)
        if out not in (None, "")
        else (directory / GAUSSIANS_NAME if out is None else None)
    )
    if target is not None:
        check_distinct_outputs({"out": target}, inputs=input_files(record))
        check_overwrite(target, overwrite)
    views = load_object_views(record, cfg.resolution, alpha_from_background=alpha_from_background)
    rgba = torch.from_numpy(views.rgba).float() / 255
    train, held = holdout_split(views.num_views, cfg.holdout_every)
    points = colors = None
    if cfg.init in ("auto", "points"):
        if record.points_path is not None:
            from gs_core.io import load_point_cloud

            points, colors = load_point_cloud(record.points_path)
        elif cfg.init == "points":
            raise FileFormatError(
                directory / "points.ply",
                "not found; init='points' needs the object's point cloud (or use init=random)",
            )
    idx_t = torch.tensor(train)
    result = fit_gaussians(
        rgba[idx_t],
        views.cameras.select(idx_t),
        cfg,
        points=points,
        colors=colors,
        eval_rgba=rgba[torch.tensor(held)] if held else None,
        eval_cameras=views.cameras.select(torch.tensor(held)) if held else None,
        device=device,
        callback=callback,
    )
    if target is not None:
        from gs_core.io import save_ply

        save_ply(target, result.gaussians.to("cpu"), overwrite=overwrite)
    return result
