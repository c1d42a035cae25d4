"""CUDA checks: the same results as on CPU, and half-precision priors run."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_chamfer_cuda_matches_cpu_at_16k():
    from gs_core.points import nearest_neighbors
    from gs_losses import chamfer_distance

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 16384, 3, generator=g), torch.rand(1, 16384, 3, generator=g)
    cpu = chamfer_distance(a, b)
    a_gpu, b_gpu = a.cuda(), b.cuda()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()  # what earlier tests in this process still hold
    gpu = chamfer_distance(a_gpu, b_gpu, max_block_elements=1 << 22)
    # Blocks of 2^22 distances (measured peak 66 MiB with the temporaries of one block on an
    # H200); the full 16k x 16k matrix alone would be 1 GiB.
    assert torch.cuda.max_memory_allocated() - base < 256 * 2**20
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-4)
    idx_cpu, _ = nearest_neighbors(a[:, :2048], b)
    idx_gpu, _ = nearest_neighbors(a[:, :2048].cuda(), b.cuda())
    assert (idx_cpu == idx_gpu.cpu()).float().mean() > 0.999


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_half_precision_zero123_sds_on_cuda(tmp_path):
    from gs_losses import SDS, SDSConfig
    from gs_priors import Zero123Guidance
    from gs_priors.tiny import save_tiny_zero123

    z = Zero123Guidance.from_pretrained(
        save_tiny_zero123(tmp_path / "z"), device="cuda", dtype=torch.float16
    )
    ref = z.encode_reference(torch.rand(1, 4, 32, 32, device="cuda"))
    cond = z.camera_condition(ref, torch.tensor([0.0, 15.0]), torch.tensor([90.0, -90.0]))
    renders = torch.rand(2, 3, 16, 16, device="cuda", requires_grad=True)
    out = SDS(z, SDSConfig(guidance_scale=5.0, timesteps={"t_range": (0.02, 0.98)})).compute(
        renders, cond
    )
    out.loss.backward()
    assert out.latents.dtype == torch.float32 and torch.isfinite(renders.grad).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lpips_cuda_matches_cpu():
    import torchvision

    from gs_losses import LPIPS

    torch.manual_seed(0)
    state = {
        k: v
        for k, v in torchvision.models.alexnet(weights=None).state_dict().items()
        if k.startswith("features.")
    }
    m = LPIPS("alex", backbone_weights=state)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    cpu = m(x, y)
    gpu = m.cuda()(x.cuda(), y.cuda()).cpu()
    assert torch.allclose(cpu, gpu, rtol=1e-3, atol=1e-5)
