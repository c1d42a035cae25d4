"""Parity of the torch and gsplat backends on CUDA (run on a GPU machine: ``pytest -m gpu -s``).

Documented tolerances: images (rgb, alpha) max abs difference <= 1e-3; expected depth relative
difference <= 1e-3 where alpha > 0.5; gradients cosine similarity >= 0.99 per parameter; radii
identical for >= 99.9% of entries (ceil() of float32 values computed in a different order can
differ by one pixel).
"""

from __future__ import annotations

import pytest
import torch

from gs_core import Cameras, Gaussians, render

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

PARAMS = ("means", "quats", "scales", "opacities", "sh")


def _scene(batch, n, sh_degree, seed):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(*batch, n, 3, generator=g)
    means = d / d.norm(dim=-1, keepdim=True) * torch.rand(*batch, n, 1, generator=g) ** (1 / 3)
    quats = torch.randn(*batch, n, 4, generator=g)
    scales = torch.exp(torch.randn(*batch, n, 3, generator=g) * 0.4 - 3.5)
    opac = torch.sigmoid(torch.randn(*batch, n, generator=g))
    sh = torch.randn(*batch, n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    return [t.cuda().requires_grad_() for t in (means, quats, scales, opac, sh)]


def _cameras(batch):
    cams = Cameras.orbit([10.0, 100.0, 230.0], [15.0, -20.0, 40.0], radius=2.6, width=96, height=72)
    vm = cams.viewmats.expand(*batch, 3, 4, 4).contiguous()
    ks = cams.Ks.expand(*batch, 3, 3, 3).contiguous()
    return Cameras(vm.cuda(), ks.cuda(), 96, 72)


def _run(params, cams, backend, rasterize_mode, bg, weights):
    out = render(
        Gaussians.unchecked(*params),
        cams,
        background=bg,
        mode="RGB+ED",
        backend=backend,
        rasterize_mode=rasterize_mode,
    )
    w_rgb, w_a, w_d = weights
    loss = (out.rgb * w_rgb).sum() + (out.alpha * w_a).sum()
    loss = loss + (out.depth * out.alpha.detach() * w_d).sum() * 0.1
    grads = torch.autograd.grad(loss, params)
    return out, grads


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("rasterize_mode", ["classic", "antialiased"])
def test_torch_and_gsplat_backends_agree(sh_degree, rasterize_mode):
    batch = (2,)
    params = _scene(batch, 3000, sh_degree, seed=sh_degree + 10 * (rasterize_mode == "antialiased"))
    cams = _cameras(batch)
    bg = torch.rand(*batch, 3, 3, device="cuda")
    torch.manual_seed(0)
    weights = [torch.randn(*batch, 3, 72, 96, k, device="cuda") for k in (3, 1, 1)]
    out_t, g_t = _run(params, cams, "torch", rasterize_mode, bg, weights)
    out_g, g_g = _run(params, cams, "gsplat", rasterize_mode, bg, weights)
    assert out_t.meta["backend"] == "torch" and out_g.meta["backend"] == "gsplat"

    d_rgb = (out_t.rgb - out_g.rgb).abs().max().item()
    d_alpha = (out_t.alpha - out_g.alpha).abs().max().item()
    solid = (out_t.alpha > 0.5) & (out_g.alpha > 0.5)
    d_depth = (
        ((out_t.depth - out_g.depth).abs() / out_g.depth.abs().clamp_min(1e-6))[solid].max().item()
    )
    r_t, r_g = out_t.meta["radii"], out_g.meta["radii"]
    radii_same = (r_t == r_g).all(-1).float().mean().item()
    vis = (r_t > 0).all(-1) & (r_g > 0).all(-1)
    d_m2 = (out_t.meta["means2d"] - out_g.meta["means2d"])[vis].abs().max().item()
    cos = {
        name: torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()
        for name, a, b in zip(PARAMS, g_t, g_g, strict=True)
    }
    print(
        f"\nparity sh{sh_degree} {rasterize_mode}: max|d rgb| {d_rgb:.2e}  max|d alpha| {d_alpha:.2e}  "
        f"max rel d ED {d_depth:.2e}  radii equal {radii_same:.5f}  max|d means2d| {d_m2:.2e}  "
        + "  ".join(f"cos({k}) {v:.6f}" for k, v in cos.items())
    )
    assert d_rgb <= 1e-3 and d_alpha <= 1e-3
    assert d_depth <= 1e-3
    assert radii_same >= 0.999
    assert d_m2 <= 1e-3
    for name, c in cos.items():
        assert c >= 0.99, (name, c)


def test_gsplat_backend_drives_default_strategy():
    strategy_mod = pytest.importorskip("gsplat.strategy")
    torch.manual_seed(0)
    n0 = 200
    dev = "cuda"
    params = torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter(torch.rand(n0, 3, device=dev) - 0.5),
            "scales": torch.nn.Parameter(torch.full((n0, 3), -3.0, device=dev)),
            "quats": torch.nn.Parameter(torch.randn(n0, 4, device=dev)),
            "opacities": torch.nn.Parameter(torch.zeros(n0, device=dev)),
            "sh0": torch.nn.Parameter(torch.zeros(n0, 1, 3, device=dev)),
        }
    )
    optimizers = {k: torch.optim.Adam([p], lr=1e-2) for k, p in params.items()}
    strategy = strategy_mod.DefaultStrategy(
        refine_start_iter=2, refine_every=5, refine_stop_iter=30
    )
    state = strategy.initialize_state()
    cams = Cameras.orbit([0.0, 90.0], [10.0, 10.0], radius=2.5, width=64, height=64, device=dev)
    target = torch.rand(2, 64, 64, 3, device=dev)
    for step in range(31):
        p = params
        g = Gaussians.unchecked(
            p["means"], p["quats"], torch.exp(p["scales"]), torch.sigmoid(p["opacities"]), p["sh0"]
        )
        out = render(g, cams, backend="gsplat")
        strategy.step_pre_backward(params, optimizers, state, step, out.meta)
        (out.rgb - target).abs().mean().backward()
        strategy.step_post_backward(params, optimizers, state, step, out.meta)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
    assert params["means"].shape[0] != n0
