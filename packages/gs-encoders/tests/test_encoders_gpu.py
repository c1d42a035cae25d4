"""CUDA runs agree with CPU runs (grouping exactly, networks to bf16 accuracy)."""

import pytest
import torch
import torch.nn.functional as F

from gs_encoders import (
    DinoV2Encoder,
    OpenShapeConfig,
    OpenShapeEncoder,
    ball_query,
    farthest_point_sample,
    knn_query,
    prepare_point_cloud,
)
from gs_encoders.point_grouping import gather_points

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_grouping_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    xyz = prepare_point_cloud(torch.randn(2, 10_000, 3, generator=g), num_points=None)[..., :3]
    idx = farthest_point_sample(xyz, 384)
    torch.testing.assert_close(farthest_point_sample(xyz.cuda(), 384).cpu(), idx)
    c = gather_points(xyz, idx)
    # float32 distances on both devices; TF32 matmuls would move points across the boundary
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.testing.assert_close(
        ball_query(xyz.cuda(), c.cuda(), 0.2, 64).cpu(), ball_query(xyz, c, 0.2, 64)
    )
    torch.testing.assert_close(knn_query(xyz.cuda(), c.cuda(), 16).cpu(), knn_query(xyz, c, 16))


def test_openshape_bf16_on_cuda_matches_float32_cpu():
    torch.manual_seed(0)
    model = OpenShapeEncoder(OpenShapeConfig.preset("paper")).eval()
    points = prepare_point_cloud(
        torch.randn(2, 10_000, 3), torch.rand(2, 10_000, 3), num_points=None
    )
    with torch.no_grad():
        ref = model(points)
        out = model.cuda().to(torch.bfloat16)(points.cuda()).float().cpu()
    assert F.cosine_similarity(ref, out).min() > 0.99


def test_dinov2_bf16_on_cuda_matches_float32_cpu():
    torch.manual_seed(0)
    enc = DinoV2Encoder("base", pretrained=None, image_size=256)
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        ref = enc(x)
        out = enc.cuda().to(torch.bfloat16)(x.cuda())
    assert out.patches.shape == (2, 324, 768)
    assert F.cosine_similarity(out.patches.float().cpu(), ref.patches, dim=-1).min() > 0.98
