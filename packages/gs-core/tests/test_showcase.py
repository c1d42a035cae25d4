"""Comparison sheets and side-by-side turntables: every cell filled, labelled, sized as stated."""

from __future__ import annotations

import numpy as np
import torch

from gs_core import Gaussians
from gs_core.evaluation.showcase import (
    CAPTION_PX,
    HEADER_PX,
    LABEL_PX,
    comparison_sheet,
    comparison_views,
    turntable_row,
)


def blob(color) -> Gaussians:
    torch.manual_seed(0)
    return Gaussians.from_colors(torch.randn(200, 3) * 0.15, torch.tensor([color] * 200), 0.05)


def test_comparison_views_and_sheet(tmp_path):
    from gs_core.procedural import ProceduralConfig, generate

    root = tmp_path / "d"
    generate(ProceduralConfig.preset("tiny", objects=1, views=4), root, workers=0, progress=False)
    oid = next(p.name for p in root.iterdir() if (p / "transforms.json").is_file())
    gt, pred, headers = comparison_views(
        blob((0.9, 0.1, 0.1)), root / oid, 0, [1, 3], resolution=32, backend="torch"
    )
    assert gt.shape == pred.shape == (3, 32, 32, 3)
    assert headers[0] == "input" and all(h.startswith("az ") and "el " in h for h in headers[1:])
    # the red blob is rendered at every camera, the input's included
    assert all((p[..., 0] - p[..., 1] > 0.3).any() for p in pred)
    sheet = comparison_sheet(gt, pred, headers, ("ground truth", "model"), caption="x: 1 dB")
    pad = 4
    assert sheet.shape == (
        HEADER_PX + 2 * (32 + pad) + pad + CAPTION_PX,
        LABEL_PX + 3 * 36 + pad,
        3,
    )
    grey = sheet.mean(-1)
    assert (grey[:HEADER_PX, LABEL_PX:] < 128).any()  # headers are written
    assert (grey[HEADER_PX:, :LABEL_PX] < 128).any()  # and row labels


def test_turntable_row_puts_the_objects_side_by_side():
    frames = turntable_row(
        [blob((0.9, 0.1, 0.1)), blob((0.1, 0.1, 0.9))], ["red", "blue"], frames=3,
        resolution=32, backend="torch",
    )  # fmt: skip
    assert len(frames) == 3 and frames[0].shape[1] == 2 * 32 + 4 and frames[0].shape[0] > 32
    left, right = frames[0][-32:, :32].astype(int), frames[0][-32:, 36:].astype(int)
    assert (left[..., 0] - left[..., 2] > 80).any() and (right[..., 2] - right[..., 0] > 80).any()
    assert np.array_equal(frames[0].shape, frames[2].shape)
