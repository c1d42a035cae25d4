"""Point sampling / grouping against brute-force references written from the definitions."""

import numpy as np
import pytest
import torch

from gs_core.errors import ValidationError
from gs_encoders.point_grouping import (
    ball_query,
    farthest_point_sample,
    gather_points,
    knn_query,
    square_distance,
)


def _fps_reference(pts: np.ndarray, m: int, start: int) -> list[int]:
    chosen = [start]
    while len(chosen) < m:
        # distance of every point to its nearest chosen point; take the farthest
        d = np.min(((pts[:, None, :] - pts[None, chosen, :]) ** 2).sum(-1), axis=1)
        chosen.append(int(np.argmax(d)))
    return chosen


def _ball_reference(pts: np.ndarray, centre: np.ndarray, r: float, k: int) -> list[int]:
    inside = [i for i in range(len(pts)) if ((pts[i] - centre) ** 2).sum() <= r * r]
    inside = inside[:k]
    return inside + [inside[0]] * (k - len(inside))


def test_square_distance_matches_pairwise():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 3, generator=g), torch.randn(2, 7, 3, generator=g)
    ref = ((a[:, :, None] - b[:, None]) ** 2).sum(-1)
    torch.testing.assert_close(square_distance(a, b), ref, atol=1e-5, rtol=1e-5)


def test_fps_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    xyz = torch.rand(3, 200, 3, generator=g)
    idx = farthest_point_sample(xyz, 32, start=torch.tensor([0, 5, 199]))
    for b, s in enumerate([0, 5, 199]):
        assert idx[b].tolist() == _fps_reference(xyz[b].double().numpy(), 32, s)
    assert len(set(idx[0].tolist())) == 32  # never picks a point twice


def test_fps_spreads_points_better_than_the_first_points():
    # on a line, FPS from an end point takes the other end next, then the middle
    xyz = torch.zeros(1, 101, 3)
    xyz[0, :, 0] = torch.linspace(0, 1, 101)
    assert farthest_point_sample(xyz, 3).tolist() == [[0, 100, 50]]


def test_ball_query_matches_brute_force():
    g = torch.Generator().manual_seed(2)
    xyz = torch.rand(2, 300, 3, generator=g)
    centres = gather_points(xyz, farthest_point_sample(xyz, 16))
    idx = ball_query(xyz, centres, 0.2, 12)
    assert idx.shape == (2, 16, 12)
    for b in range(2):
        for s in range(16):
            ref = _ball_reference(xyz[b].double().numpy(), centres[b, s].double().numpy(), 0.2, 12)
            assert idx[b, s].tolist() == ref


def test_ball_query_pads_sparse_balls_with_the_first_point():
    xyz = torch.tensor([[[0.0, 0, 0], [5, 0, 0], [0.1, 0, 0], [9, 9, 9]]])
    idx = ball_query(xyz, xyz[:, :1], radius=0.5, k=4)
    assert idx.tolist() == [[[0, 2, 0, 0]]]


def test_knn_matches_sorting():
    g = torch.Generator().manual_seed(3)
    xyz = torch.randn(1, 50, 3, generator=g)
    centres = xyz[:, :4]
    idx = knn_query(xyz, centres, 5)
    for s in range(4):
        d = ((xyz[0] - centres[0, s]) ** 2).sum(-1).numpy()
        assert idx[0, s].tolist() == list(np.argsort(d, kind="stable")[:5])


def test_bf16_coordinates_group_like_float32():
    g = torch.Generator().manual_seed(4)
    xyz = torch.rand(1, 400, 3, generator=g)
    # coordinates exactly representable in bf16, so both runs see the same cloud
    xyz = xyz.bfloat16().float()
    i32 = farthest_point_sample(xyz, 20)
    i16 = farthest_point_sample(xyz.bfloat16(), 20)
    assert torch.equal(i32, i16)
    c = gather_points(xyz, i32)
    assert torch.equal(ball_query(xyz, c, 0.3, 8), ball_query(xyz.bfloat16(), c.bfloat16(), 0.3, 8))


def test_bad_inputs_raise_validation_errors():
    with pytest.raises(ValidationError, match="xyz"):
        farthest_point_sample(torch.rand(10, 3), 2)
    with pytest.raises(ValidationError, match="num_samples"):
        farthest_point_sample(torch.rand(1, 10, 3), 11)
    with pytest.raises(ValidationError, match="k"):
        ball_query(torch.rand(1, 10, 3), torch.rand(1, 2, 3), 0.1, 11)
