"""CUDA runs agree with CPU runs (networks to bf16 accuracy; the grouping ops are tested in
gs-core's test_points_gpu.py)."""

import pytest
import torch
import torch.nn.functional as F

from gs_encoders import (
    DinoV2Encoder,
    OpenShapeConfig,
    OpenShapeEncoder,
    prepare_point_cloud,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


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
