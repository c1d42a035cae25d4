"""No-3D references: two predictions that know nothing of the object's shape, scored on a
method's targets so its numbers can be read against them.

``blank``: the background alone. ``input_copied``: the input image shown at every target. On
the procedural world many objects look alike from most sides, so the copy scores far above the
blank view, and a method has learnt something about the unseen sides only above it.
"""

from __future__ import annotations

import torch

from gs_core.evaluation.metrics import score
from gs_core.plugins.specs import MetricFn

REFERENCE_NAMES = {
    "blank": "reference: the blank background",
    "input_copied": "reference: the input image at every target",
}


def score_references(
    gt: torch.Tensor,
    inp: torch.Tensor,
    background: torch.Tensor,
    metrics: dict[str, MetricFn],
    groups: dict[str, list[int]],
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, dict[str, float]]]:
    """reference -> column -> group -> mean score.

    Args:
        gt: the targets ``[K, H, W, 3]`` in [0, 1], ordered group by group as ``groups`` lists
            them. inp: the input image ``[H, W, 3]``. background: its colour ``[3]``.
        metrics: column name -> metric (``fn(pred, target) -> [B]``, as registered).
        groups: group name -> its target indices (only their counts are used); with several
            groups an ``all`` group is added.

    Targets whose pixels equal the input's (GECO's ring15 and DD3G's ring12 start at the
    input's own pose) are left out of both references: the copy would score the 100 dB PSNR
    cap there and lift the mean by several dB.
    """
    gt = gt.to(device)
    inp = inp.to(device)
    keep = ~(gt == inp[None]).flatten(1).all(1)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, ref in (("blank", background.to(device)), ("input_copied", inp)):
        pred = ref.expand_as(gt).contiguous()
        scores: dict[str, dict[str, float]] = {}
        for col, fn in metrics.items():
            vals = score(fn, pred, gt).to(keep.device)
            offset, per_group = 0, {}
            for gname, gidx in groups.items():
                sl = slice(offset, offset + len(gidx))
                offset += len(gidx)
                if keep[sl].any():
                    per_group[gname] = float(vals[sl][keep[sl]].mean())
            if len(groups) > 1 and keep.any():
                per_group["all"] = float(vals[keep].mean())
            scores[col] = per_group
        out[name] = scores
    return out


__all__ = ["REFERENCE_NAMES", "score_references"]
