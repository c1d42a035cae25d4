"""kNN, nearest neighbours both ways and pairwise distances against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_core.errors import ValidationError
from gs_core.points import knn, nearest_neighbors, square_distance


def _points(b, n, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, 3, generator=g) * 2 - 1, torch.rand(b, m, 3, generator=g) * 2 - 1


def _brute_nn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Index of the nearest b for every a, by explicit differences in float64: [B, N]."""
    d = ((a.double()[:, :, None, :] - b.double()[:, None, :, :]) ** 2).sum(-1)
    return d.argmin(-1)


def test_square_distance_matches_pairwise():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 3, generator=g), torch.randn(2, 7, 3, generator=g)
    ref = ((a[:, :, None] - b[:, None]) ** 2).sum(-1)
    torch.testing.assert_close(square_distance(a, b), ref, atol=1e-5, rtol=1e-5)
    assert square_distance(a.bfloat16(), b.bfloat16()).dtype == torch.float32
    assert square_distance(a[:, :0], b).shape == (2, 0, 7)
    with pytest.raises(ValidationError, match="last dim 3"):
        square_distance(a, torch.rand(2, 7, 2))


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_knn_matches_brute_force(chunk_size):
    torch.manual_seed(0)
    q, r = torch.randn(2, 33, 3), torch.randn(2, 120, 3)
    d2, idx = knn(q, r, 5, chunk_size=chunk_size)
    full = ((q[:, :, None] - r[:, None]) ** 2).sum(-1)
    ref_d2, ref_idx = full.sort(-1)
    torch.testing.assert_close(d2, ref_d2[..., :5])
    assert torch.equal(idx, ref_idx[..., :5])


def test_knn_is_nearest_first_like_a_stable_sort():
    g = torch.Generator().manual_seed(3)
    xyz = torch.randn(1, 50, 3, generator=g)
    centres = xyz[:, :4]
    idx = knn(centres, xyz, 5)[1]
    for s in range(4):
        d = ((xyz[0] - centres[0, s]) ** 2).sum(-1).numpy()
        assert idx[0, s].tolist() == list(np.argsort(d, kind="stable")[:5])


def test_knn_self_and_memory_bound():
    torch.manual_seed(0)
    x = torch.randn(1, 500, 3)
    # a budget far below the full 500 x 500 matrix still gives the exact answer
    d2, idx = knn(x, x, 4, max_bytes=4 * 500 * 3)
    assert torch.equal(idx[0, :, 0], torch.arange(500))
    assert d2[..., 0].abs().max() == 0
    ref = torch.cdist(x, x).topk(4, largest=False).indices
    assert torch.equal(idx, ref)
    with pytest.raises(ValidationError, match="k"):
        knn(x, x, 501)
    with pytest.raises(ValidationError, match="ref"):
        knn(x, torch.randn(2, 500, 3), 4)


def test_knn_distance_gradients():
    q = torch.randn(1, 4, 3, requires_grad=True)
    r = torch.randn(1, 9, 3, requires_grad=True)
    d2, idx = knn(q, r, 2)
    d2.sum().backward()
    ref_q = 2 * (q.detach()[0, :, None] - r.detach()[0, idx[0]]).sum(-2)  # d/dq sum_j |q - r_j|^2
    torch.testing.assert_close(q.grad[0], ref_q)
    assert r.grad.abs().sum() > 0


def test_knn_under_bf16_autocast_searches_in_float32():
    torch.manual_seed(0)
    q, r = torch.randn(1, 40, 3), torch.randn(1, 300, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, idx = knn(q, r, 8)
    assert torch.equal(idx, knn(q, r, 8)[1])


@pytest.mark.parametrize("max_bytes", [1 << 28, 4 * 7 * 50, 1])
def test_nearest_neighbors_matches_brute_force_for_any_block_size(max_bytes):
    a, b = _points(2, 37, 50)
    idx_ab, idx_ba = nearest_neighbors(a, b, max_bytes=max_bytes)
    assert torch.equal(idx_ab, _brute_nn(a, b))
    assert torch.equal(idx_ba, _brute_nn(b, a))


def test_nearest_neighbors_far_from_the_origin_and_in_other_dims():
    # centring keeps the |a|^2 + |b|^2 - 2ab expansion exact enough 1000 units out
    a, b = _points(1, 200, 150, seed=2)
    a, b = a + 1000.0, b + 1000.0
    idx_ab, idx_ba = nearest_neighbors(a, b)
    assert torch.equal(idx_ab, _brute_nn(a, b)) and torch.equal(idx_ba, _brute_nn(b, a))
    g = torch.Generator().manual_seed(3)
    a5, b5 = torch.rand(2, 30, 5, generator=g), torch.rand(2, 20, 5, generator=g)
    idx_ab, idx_ba = nearest_neighbors(a5, b5)
    assert torch.equal(idx_ab, _brute_nn(a5, b5)) and torch.equal(idx_ba, _brute_nn(b5, a5))
    with pytest.raises(ValidationError, match="at least one point"):
        nearest_neighbors(a[:, :0], b)
