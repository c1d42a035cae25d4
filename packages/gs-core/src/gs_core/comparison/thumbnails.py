"""The small pictures of a comparison page: per object the input, and a frame strip of a few
protocol views for the ground truth and for each method's renders at the same views.

A strip shows ``STRIP_VIEWS`` views spread evenly over the protocol's first view group (for
``gso`` and ``ring15``: the 15-view ring at elevation 0, every third view, so 72 degrees apart),
each scaled down to ``THUMB_PX`` pixels. The scored images are not changed: thumbnails are made
from them after scoring.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from gs_core.data.backgrounds import NAMED
from gs_core.imaging import composite, to_uint8

STRIP_VIEWS = 5
THUMB_PX = 80
GAP_PX = 2


def strip_positions(groups: dict[str, list[int]], views: int = STRIP_VIEWS) -> list[int]:
    """Positions, in the harness's target order (group by group), of the strip's views: up to
    ``views`` spread evenly over the first group."""
    first = next(iter(groups.values()))
    n = min(views, len(first))
    return [i * len(first) // n for i in range(n)]


def strip_caption(groups: dict[str, list[int]], views: int = STRIP_VIEWS) -> str:
    """Which views a strip shows, for the page: ``views 1, 4, 7, 10, 13 of ring15``."""
    name = next(iter(groups))
    pos = strip_positions(groups, views)
    return f"views {', '.join(str(p + 1) for p in pos)} of {name}"


def thumbnail(image, px: int = THUMB_PX) -> np.ndarray:
    """``[px, px, 3]`` uint8 of an ``[H, W, 3]`` image (float in [0, 1], uint8 or a tensor), area-averaged
    so thin structures do not alias away."""
    arr = to_uint8(image)
    im = Image.fromarray(arr).resize((px, round(px * arr.shape[0] / arr.shape[1])), Image.BOX)
    return np.asarray(im)


def frame_strip(
    images, positions: Sequence[int], px: int = THUMB_PX, gap: int = GAP_PX
) -> np.ndarray:
    """``[px, n * (px + gap) - gap, 3]`` uint8: the thumbnails of ``images[p]`` for each of the
    ``n`` positions side by side (``images [K, H, W, 3]``), on a white gap."""
    tiles = [thumbnail(images[p], px) for p in positions]
    h = tiles[0].shape[0]
    out = np.full((h, len(tiles) * (px + gap) - gap, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        out[:, i * (px + gap) : i * (px + gap) + px] = t
    return out


def reference_thumbnails(plan, config) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per object of ``plan`` (an :class:`~gs_core.evaluation.plan.EvalPlan`), the input
    thumbnail and the ground-truth strip, composited on ``config.background`` at
    ``config.resolution`` as the harness scores them. Made from the dataset, so the page shows
    them even when every method failed."""
    from gs_core.data.views import load_object_views

    bg = NAMED[config.background]
    inputs, truths = {}, {}
    for oid in plan.object_ids:
        sel = plan.selections[oid]
        rgba = load_object_views(plan.records[oid], config.resolution).rgba
        rgba = rgba.astype(np.float32) / 255
        inputs[oid] = thumbnail(composite(rgba[sel.input_index], bg))
        targets = [composite(rgba[i], bg) for i in sel.targets]
        truths[oid] = frame_strip(targets, strip_positions(sel.groups))
    return inputs, truths


__all__ = [
    "GAP_PX",
    "STRIP_VIEWS",
    "THUMB_PX",
    "frame_strip",
    "reference_thumbnails",
    "strip_caption",
    "strip_positions",
    "thumbnail",
]
