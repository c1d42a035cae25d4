"""Farthest point sampling against brute force: the torch loop and its CUDA-graph replay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_core.errors import ValidationError
from gs_core.points import farthest_point_sample


def _fps_reference(pts: np.ndarray, m: int, start: int = 0) -> list[int]:
    chosen = [start]
    while len(chosen) < m:
        # distance of every point to its nearest chosen point; take the farthest
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


def test_fps_per_cloud_start_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    xyz = torch.rand(3, 200, 3, generator=g)
    idx = farthest_point_sample(xyz, 32, start_index=torch.tensor([0, 5, 199]))
    for b, s in enumerate([0, 5, 199]):
        assert idx[b].tolist() == _fps_reference(xyz[b].double().numpy(), 32, s)
    assert len(set(idx[0].tolist())) == 32  # never picks a point twice
    # one int and the same int per cloud are the same request
    assert torch.equal(
        farthest_point_sample(xyz, 9, start_index=7),
        farthest_point_sample(xyz, 9, start_index=torch.tensor([7, 7, 7])),
    )


def test_fps_spreads_points_along_a_line():
    # from an end point FPS takes the other end next, then the middle
    xyz = torch.zeros(1, 101, 3)
    xyz[0, :, 0] = torch.linspace(0, 1, 101)
    assert farthest_point_sample(xyz, 3).tolist() == [[0, 100, 50]]


def test_fps_bf16_coordinates_pick_like_float32():
    g = torch.Generator().manual_seed(4)
    # coordinates exactly representable in bf16, so both runs see the same cloud
    xyz = torch.rand(1, 400, 3, generator=g).bfloat16().float()
    assert torch.equal(farthest_point_sample(xyz, 20), farthest_point_sample(xyz.bfloat16(), 20))


def test_fps_properties_and_errors():
    xyz = torch.rand(1, 50, 3)
    idx = farthest_point_sample(xyz, 50)
    assert sorted(idx[0].tolist()) == list(range(50))  # m = N visits every point once
    assert farthest_point_sample(xyz, 5, start_index=7)[0, 0] == 7
    with pytest.raises(ValidationError, match="num_samples"):
        farthest_point_sample(xyz, 51)
    with pytest.raises(ValidationError, match="xyz"):
        farthest_point_sample(torch.rand(50, 3), 5)
    with pytest.raises(ValidationError, match="start_index"):
        farthest_point_sample(xyz, 5, start_index=50)
    with pytest.raises(ValidationError, match="start_index"):
        farthest_point_sample(xyz, 5, start_index=torch.tensor([3, 4]))
    with pytest.raises(ValidationError, match="start_index"):
        farthest_point_sample(xyz, 5, start_index=torch.tensor([-1]))


def test_fps_cuda_graph_needs_cuda():
    with pytest.raises(ValidationError, match="cuda_graph"):
        farthest_point_sample(torch.rand(1, 100, 3), 70, cuda_graph=True)
    with pytest.raises(ValidationError, match="use_triton"):
        farthest_point_sample(torch.rand(1, 100, 3), 70, use_triton=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fps_cuda_graph_matches_eager():
    torch.manual_seed(0)
    xyz = torch.randn(2, 5000, 3, device="cuda")
    for m in (64, 200, 1000):  # whole blocks and a remainder
        eager = farthest_point_sample(xyz, m, cuda_graph=False, use_triton=False)
        graph = farthest_point_sample(xyz, m, cuda_graph=True, use_triton=False)
        assert torch.equal(eager, graph)
    other = torch.randn(2, 5000, 3, device="cuda")  # cached graph, new points
    assert torch.equal(
        farthest_point_sample(other, 300, 5, cuda_graph=True, use_triton=False),
        farthest_point_sample(other, 300, 5, cuda_graph=False, use_triton=False),
    )
    starts = torch.tensor([3, 4999], device="cuda")  # a start per cloud through the graph
    assert torch.equal(
        farthest_point_sample(other, 300, starts, cuda_graph=True, use_triton=False),
        farthest_point_sample(other, 300, starts, cuda_graph=False, use_triton=False),
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fps_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    xyz = torch.randn(2, 10_000, 3, generator=g)
    torch.testing.assert_close(
        farthest_point_sample(xyz.cuda(), 384).cpu(), farthest_point_sample(xyz, 384)
    )
