"""Chamfer distance and AGG's attribute Chamfer against brute-force references."""

from __future__ import annotations

import pytest
import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians, rgb_to_sh0
from gs_losses import attribute_chamfer, chamfer_distance


def _points(b, n, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, 3, generator=g) * 2 - 1, torch.rand(b, m, 3, generator=g) * 2 - 1


def test_chamfer_distance_values_and_gradients_match_brute_force():
    a, b = _points(3, 40, 25, seed=1)
    a.requires_grad_(True)
    b.requires_grad_(True)
    cd = chamfer_distance(a, b, reduction="none", max_block_elements=64)
    # Reference: full distance matrix with autograd through min.
    a2, b2 = a.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    d = ((a2[:, :, None] - b2[:, None]) ** 2).sum(-1)
    ref = d.min(2).values.mean(1) + d.min(1).values.mean(1)
    assert torch.allclose(cd, ref, atol=1e-6)
    cd.sum().backward()
    ref.sum().backward()
    assert torch.allclose(a.grad, a2.grad, atol=1e-6)
    assert torch.allclose(b.grad, b2.grad, atol=1e-6)
    # Plain (non-squared) distances.
    ref_plain = d.sqrt().min(2).values.mean(1) + d.sqrt().min(1).values.mean(1)
    assert torch.allclose(
        chamfer_distance(a, b, squared=False, reduction="none"), ref_plain, atol=1e-6
    )
    assert chamfer_distance(a, b).item() == pytest.approx(ref.mean().item(), rel=1e-5)


def test_chamfer_is_zero_on_identical_sets_and_accepts_unbatched():
    a, _ = _points(1, 30, 1)
    perm = a[:, torch.randperm(30)]
    assert chamfer_distance(a, perm).item() == pytest.approx(0.0, abs=1e-10)
    assert chamfer_distance(a[0], perm[0]).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValidationError, match="last dim 3"):
        chamfer_distance(a, torch.rand(1, 5, 2))


def test_chamfer_large_sets_stay_blockwise():
    # 4096 x 4096 points with blocks of 2^20 entries: the 16M-entry matrix is never built whole.
    a, b = _points(1, 4096, 4096, seed=3)
    cd = chamfer_distance(a, b, max_block_elements=1 << 20)
    sub_ref = chamfer_distance(a, b, max_block_elements=1 << 26)
    assert cd.item() == pytest.approx(sub_ref.item(), rel=1e-6)


def _attr_reference(p: dict, q: dict, w1: float, w2: float) -> dict:
    """AGG's equation by explicit loops over points."""
    out = {}
    bsz, n = p["xyz"].shape[:2]
    m = q["xyz"].shape[1]
    for k in p:
        total = 0.0
        for bi in range(bsz):
            fwd = 0.0
            for i in range(n):
                j = int(((q["xyz"][bi] - p["xyz"][bi, i]) ** 2).sum(-1).argmin())
                fwd += float((p[k][bi, i] - q[k][bi, j]).abs().sum())
            bwd = 0.0
            for j in range(m):
                i = int(((p["xyz"][bi] - q["xyz"][bi, j]) ** 2).sum(-1).argmin())
                bwd += float((q[k][bi, j] - p[k][bi, i]).abs().sum())
            total += w1 * fwd / n + w2 * bwd / m
        out[k] = total / bsz
    return out


def test_attribute_chamfer_matches_loop_reference():
    g = torch.Generator().manual_seed(4)
    p = {
        "xyz": torch.rand(2, 20, 3, generator=g),
        "opacity": torch.rand(2, 20, 1, generator=g),
        "rgb": torch.rand(2, 20, 3, generator=g),
    }
    q = {
        "xyz": torch.rand(2, 15, 3, generator=g),
        "opacity": torch.rand(2, 15, 1, generator=g),
        "rgb": torch.rand(2, 15, 3, generator=g),
    }
    got = attribute_chamfer(p, q, w1=0.7, w2=1.3, max_block_elements=32)
    ref = _attr_reference(p, q, 0.7, 1.3)
    assert set(got) == {"xyz", "opacity", "rgb"}
    for k in ref:
        assert got[k].item() == pytest.approx(ref[k], rel=1e-5)


def test_attribute_chamfer_on_gaussians_and_gradients():
    g = torch.Generator().manual_seed(5)
    n, m = 12, 9

    def gauss(k):
        rgb = torch.rand(k, 3, generator=g)
        return Gaussians(
            means=torch.rand(k, 3, generator=g),
            quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(k, 1),
            scales=torch.full((k, 3), 0.03),
            opacities=torch.rand(k, generator=g),
            sh=rgb_to_sh0(rgb).unsqueeze(-2),
        ), rgb

    (gp, rgb_p), (gq, rgb_q) = gauss(n), gauss(m)
    got = attribute_chamfer(gp, gq)
    ref = _attr_reference(
        {"xyz": gp.means[None], "opacity": gp.opacities[None, :, None], "rgb": rgb_p[None]},
        {"xyz": gq.means[None], "opacity": gq.opacities[None, :, None], "rgb": rgb_q[None]},
        1.0,
        1.0,
    )
    for k in ref:
        assert got[k].item() == pytest.approx(ref[k], rel=1e-5)
    # Gradients reach every predicted attribute, not the matching.
    xyz = gp.means.clone().requires_grad_(True)
    op = gp.opacities.clone()[:, None].requires_grad_(True)
    terms = attribute_chamfer(
        {"xyz": xyz, "opacity": op}, {"xyz": gq.means, "opacity": gq.opacities[:, None]}
    )
    (terms["xyz"] + terms["opacity"]).backward()
    assert xyz.grad.abs().sum() > 0 and op.grad.abs().sum() > 0


def test_attribute_chamfer_rejects_mismatched_attributes():
    p = {"xyz": torch.rand(1, 4, 3), "rgb": torch.rand(1, 4, 3)}
    with pytest.raises(ValidationError, match="attributes of pred"):
        attribute_chamfer(p, {"xyz": torch.rand(1, 5, 3)})
    with pytest.raises(ValidationError, match="xyz"):
        attribute_chamfer({"rgb": torch.rand(1, 4, 3)}, {"rgb": torch.rand(1, 4, 3)})
    with pytest.raises(ValidationError, match="rgb"):
        attribute_chamfer(p, {"xyz": torch.rand(1, 5, 3), "rgb": torch.rand(1, 4, 3)})


def test_distance_blocks_respect_the_element_bound(monkeypatch):
    import gs_losses.chamfer as chamfer_mod

    seen = []
    real = torch.baddbmm

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out.numel())
        return out

    monkeypatch.setattr(chamfer_mod.torch, "baddbmm", spy)
    a, b = _points(2, 1000, 800, seed=6)
    chamfer_distance(a, b, max_block_elements=100_000)
    assert seen and max(seen) <= 100_000
    assert len(seen) == -(-1000 // (100_000 // (2 * 800)))
