"""Ball query against PointNet++'s rule written out point by point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_core.errors import ValidationError
from gs_core.points import ball_query, farthest_point_sample, gather_points


def _ball_reference(pts: np.ndarray, centre: np.ndarray, r: float, k: int) -> list[int]:
    inside = [i for i in range(len(pts)) if ((pts[i] - centre) ** 2).sum() <= r * r]
    inside = inside[:k]
    return inside + [inside[0]] * (k - len(inside))


@pytest.mark.parametrize("max_bytes", [1 << 28, 4 * 2 * 300 * 5])
def test_ball_query_matches_brute_force(max_bytes):
    g = torch.Generator().manual_seed(2)
    xyz = torch.rand(2, 300, 3, generator=g)
    centres = gather_points(xyz, farthest_point_sample(xyz, 16))
    idx = ball_query(xyz, centres, 0.2, 12, max_bytes=max_bytes)
    assert idx.shape == (2, 16, 12)
    for b in range(2):
        for s in range(16):
            ref = _ball_reference(xyz[b].double().numpy(), centres[b, s].double().numpy(), 0.2, 12)
            assert idx[b, s].tolist() == ref


def test_ball_query_pads_sparse_balls_with_the_first_point():
    xyz = torch.tensor([[[0.0, 0, 0], [5, 0, 0], [0.1, 0, 0], [9, 9, 9]]])
    idx = ball_query(xyz, xyz[:, :1], radius=0.5, k=4)
    assert idx.tolist() == [[[0, 2, 0, 0]]]


def test_ball_query_bf16_coordinates_group_like_float32():
    g = torch.Generator().manual_seed(4)
    xyz = torch.rand(1, 400, 3, generator=g).bfloat16().float()
    c = gather_points(xyz, farthest_point_sample(xyz, 20))
    assert torch.equal(ball_query(xyz, c, 0.3, 8), ball_query(xyz.bfloat16(), c.bfloat16(), 0.3, 8))


def test_ball_query_errors():
    with pytest.raises(ValidationError, match="k"):
        ball_query(torch.rand(1, 10, 3), torch.rand(1, 2, 3), 0.1, 11)
    with pytest.raises(ValidationError, match="empty ball"):
        ball_query(torch.zeros(1, 10, 3), torch.full((1, 1, 3), 5.0), 0.1, 2)
    with pytest.raises(ValidationError, match="centers"):
        ball_query(torch.rand(1, 10, 3), torch.rand(2, 2, 3), 0.1, 2)
