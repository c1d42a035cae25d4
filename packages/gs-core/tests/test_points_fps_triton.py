"""The Triton FPS kernel gives the torch loop's indices exactly (CUDA with Triton only)."""

import pytest
import torch

from gs_core.points import farthest_point_sample
from gs_core.triton_support import triton_available

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(not triton_available(), reason="needs triton"),
]


@pytest.mark.parametrize("n, m", [(100, 17), (4096, 1024), (16384, 4096), (20000, 333)])
def test_triton_fps_equals_torch_loop_exactly(n, m):
    g = torch.Generator().manual_seed(n)
    # integer coordinates: squared distances are exact in float32, so both paths must agree
    # index for index, ties (many here) included
    xyz = torch.randint(0, 64, (3, n, 3), generator=g).float().cuda()
    ref = farthest_point_sample(xyz, m, start_index=5, use_triton=False, cuda_graph=False)
    got = farthest_point_sample(xyz, m, start_index=5, use_triton=True)
    assert got.dtype == torch.long and got.shape == (3, m)
    assert torch.equal(got, ref)


def test_triton_fps_per_cloud_start_equals_torch_loop():
    g = torch.Generator().manual_seed(1)
    xyz = torch.randint(0, 64, (3, 3000, 3), generator=g).float().cuda()
    starts = torch.tensor([0, 1, 2999])
    ref = farthest_point_sample(xyz, 200, starts, use_triton=False, cuda_graph=False)
    got = farthest_point_sample(xyz, 200, starts, use_triton=True)
    assert got[:, 0].tolist() == [0, 1, 2999] and torch.equal(got, ref)


def test_triton_fps_on_float_clouds_is_a_valid_fps():
    xyz = torch.rand(2, 5000, 3, device="cuda")
    idx = farthest_point_sample(xyz, 500, use_triton=True)
    assert idx[:, 0].eq(0).all() and idx.unique(dim=1).shape[1] == 500
    # each chosen point is at least as far from the earlier ones as any later choice
    pts = torch.gather(xyz, 1, idx[..., None].expand(-1, -1, 3))
    d = torch.cdist(pts, pts)
    prev_min = torch.stack([d[:, i, :i].min(-1).values for i in range(1, 500)], 1)
    assert (prev_min[:, 1:] <= prev_min[:, :-1] + 1e-6).all()
