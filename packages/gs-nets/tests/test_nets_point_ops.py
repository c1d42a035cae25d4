"""Farthest point sampling, kNN, gathering and interpolation against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_nets import farthest_point_sample, gather_points, group_points, interpolate_features, knn


def _fps_reference(pts: np.ndarray, m: int) -> list[int]:
    chosen = [0]
    for _ in range(m - 1):
        d = np.min(((pts[:, None, :] - pts[None, chosen, :]) ** 2).sum(-1), axis=1)
        chosen.append(int(np.argmax(d)))
    return chosen


def test_fps_matches_brute_force():
    torch.manual_seed(0)
    xyz = torch.randn(3, 200, 3, dtype=torch.float64)
    idx = farthest_point_sample(xyz, 40)
    assert idx.shape == (3, 40) and idx.dtype == torch.long
    for b in range(3):
        assert idx[b].tolist() == _fps_reference(xyz[b].numpy(), 40)


def test_fps_properties_and_errors():
    xyz = torch.rand(1, 50, 3)
    idx = farthest_point_sample(xyz, 50)
    assert sorted(idx[0].tolist()) == list(range(50))  # m = N visits every point once
    assert farthest_point_sample(xyz, 5, start_index=7)[0, 0] == 7
    with pytest.raises(ValueError, match="num_samples"):
        farthest_point_sample(xyz, 51)
    with pytest.raises(ValueError, match="xyz"):
        farthest_point_sample(torch.rand(50, 3), 5)


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_knn_matches_brute_force(chunk_size):
    torch.manual_seed(0)
    q, r = torch.randn(2, 33, 3), torch.randn(2, 120, 3)
    d2, idx = knn(q, r, 5, chunk_size=chunk_size)
    full = ((q[:, :, None] - r[:, None]) ** 2).sum(-1)
    ref_d2, ref_idx = full.sort(-1)
    torch.testing.assert_close(d2, ref_d2[..., :5])
    assert torch.equal(idx, ref_idx[..., :5])


def test_knn_self_and_memory_bound():
    torch.manual_seed(0)
    x = torch.randn(1, 500, 3)
    # a budget far below the full 500 x 500 matrix still gives the exact answer
    d2, idx = knn(x, x, 4, max_bytes=4 * 500 * 3)
    assert torch.equal(idx[0, :, 0], torch.arange(500))
    assert d2[..., 0].abs().max() == 0
    ref = torch.cdist(x, x).topk(4, largest=False).indices
    assert torch.equal(idx, ref)
    with pytest.raises(ValueError, match="k"):
        knn(x, x, 501)


def test_knn_distance_gradients():
    q = torch.randn(1, 4, 3, requires_grad=True)
    r = torch.randn(1, 9, 3, requires_grad=True)
    d2, idx = knn(q, r, 2)
    d2.sum().backward()
    ref_q = 2 * (q.detach()[0, :, None] - r.detach()[0, idx[0]]).sum(-2)  # d/dq sum_j |q - r_j|^2
    torch.testing.assert_close(q.grad[0], ref_q)
    assert r.grad.abs().sum() > 0


def test_gather_and_group():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    idx = torch.tensor([[[0, 4], [1, 1]], [[3, 2], [0, 0]]])
    out = gather_points(x, idx)
    assert out.shape == (2, 2, 2, 3)
    for b in range(2):
        torch.testing.assert_close(out[b], x[b][idx[b]])
    centers = torch.randn(2, 2, 3)
    g = group_points(x, x, centers, idx)
    torch.testing.assert_close(g[..., :3], out - centers[:, :, None])
    torch.testing.assert_close(g[..., 3:], out)


def test_interpolate_features_formula():
    torch.manual_seed(0)
    ref_xyz, feats = torch.randn(2, 20, 3), torch.randn(2, 20, 4)
    q = torch.randn(2, 6, 3)
    out = interpolate_features(q, ref_xyz, feats)
    for b in range(2):
        for i in range(6):
            d2 = ((ref_xyz[b] - q[b, i]) ** 2).sum(-1)
            nn3 = d2.argsort()[:3]
            w = 1 / d2[nn3]
            torch.testing.assert_close(out[b, i], (feats[b, nn3] * (w / w.sum())[:, None]).sum(0))
    # a query on a reference point copies that point's features
    torch.testing.assert_close(interpolate_features(ref_xyz[:, :3], ref_xyz, feats), feats[:, :3])


def test_fps_cuda_graph_needs_cuda():
    with pytest.raises(ValueError, match="cuda_graph"):
        farthest_point_sample(torch.rand(1, 100, 3), 70, cuda_graph=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fps_cuda_graph_matches_eager():
    torch.manual_seed(0)
    xyz = torch.randn(2, 5000, 3, device="cuda")
    for m in (64, 200, 1000):  # whole blocks and a remainder
        eager = farthest_point_sample(xyz, m, cuda_graph=False)
        graph = farthest_point_sample(xyz, m, cuda_graph=True)
        assert torch.equal(eager, graph)
    other = torch.randn(2, 5000, 3, device="cuda")  # cached graph, new points
    assert torch.equal(
        farthest_point_sample(other, 300, 5, cuda_graph=True),
        farthest_point_sample(other, 300, 5, cuda_graph=False),
    )
