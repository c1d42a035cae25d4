"""CUDA runs of the neighbour searches agree with CPU runs."""

import pytest
import torch

from gs_core.points import ball_query, farthest_point_sample, gather_points, knn, nearest_neighbors

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_grouping_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    xyz = torch.randn(2, 10_000, 3, generator=g)
    xyz = xyz / xyz.norm(dim=-1).amax(-1)[:, None, None]  # OpenShape's unit sphere
    idx = farthest_point_sample(xyz, 384)
    torch.testing.assert_close(farthest_point_sample(xyz.cuda(), 384).cpu(), idx)
    c = gather_points(xyz, idx)
    # float32 distances on both devices; TF32 matmuls would move points across the boundary
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.testing.assert_close(
        ball_query(xyz.cuda(), c.cuda(), 0.2, 64).cpu(), ball_query(xyz, c, 0.2, 64)
    )
    torch.testing.assert_close(knn(c.cuda(), xyz.cuda(), 16)[1].cpu(), knn(c, xyz, 16)[1])


def test_nearest_neighbors_on_cuda_match_cpu():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 2048, 3, generator=g), torch.rand(1, 16384, 3, generator=g)
    torch.backends.cuda.matmul.allow_tf32 = False
    idx_cpu, _ = nearest_neighbors(a, b)
    idx_gpu, _ = nearest_neighbors(a.cuda(), b.cuda())
    assert (idx_cpu == idx_gpu.cpu()).float().mean() > 0.999
