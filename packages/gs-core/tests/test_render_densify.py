"""gsplat's DefaultStrategy (pure torch) drives densification from the torch backend's meta."""

from __future__ import annotations

import pytest
import torch

from gs_core import Cameras, Gaussians, render
from gs_core.gaussians import rgb_to_sh0

strategy_mod = pytest.importorskip("gsplat.strategy")


def _target_scene() -> Gaussians:
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[-0.35, 0.0, 0.0], [0.35, 0.15, 0.0], [0.0, -0.3, 0.2]])
    colors = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9]])
    means = (centers[:, None] + torch.randn(3, 60, 3, generator=g) * 0.12).reshape(-1, 3)
    cols = colors[:, None].expand(3, 60, 3).reshape(-1, 3)
    return Gaussians.from_colors(means, cols, 0.04, 0.9)


def test_default_strategy_densifies_prunes_and_fits():
    torch.manual_seed(0)
    cams = Cameras.orbit(
        [0.0, 60.0, 120.0, 200.0, 280.0],
        [10.0, -15.0, 25.0, 5.0, -5.0],
        radius=2.2,
        width=32,
        height=32,
    )
    with torch.no_grad():
        target = render(_target_scene(), cams, background=1.0, backend="torch").rgb

    n0 = 40
    params = torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter(torch.rand(n0, 3) * 0.8 - 0.4),
            "scales": torch.nn.Parameter(torch.full((n0, 3), -2.5)),
            "quats": torch.nn.Parameter(torch.nn.functional.normalize(torch.randn(n0, 4), dim=-1)),
            "opacities": torch.nn.Parameter(torch.full((n0,), 0.0)),
            "sh0": torch.nn.Parameter(rgb_to_sh0(torch.full((n0, 1, 3), 0.5))),
        }
    )
    lrs = {"means": 5e-3, "scales": 2e-2, "quats": 1e-2, "opacities": 5e-2, "sh0": 5e-2}
    optimizers = {k: torch.optim.Adam([params[k]], lr=lr) for k, lr in lrs.items()}
    strategy = strategy_mod.DefaultStrategy(
        refine_start_iter=10,
        refine_stop_iter=35,
        refine_every=10,
        reset_every=10_000,
        grow_grad2d=2e-4,
        grow_scale3d=0.05,
        prune_opa=0.02,
    )
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=1.0)

    losses, counts = [], []
    for step in range(45):
        g = Gaussians.from_raw(
            params["means"], params["quats"], params["scales"], params["opacities"], params["sh0"]
        )
        out = render(g, cams, background=1.0, backend="torch")
        strategy.step_pre_backward(params, optimizers, state, step, out.meta)
        loss = (out.rgb - target).abs().mean()
        loss.backward()
        strategy.step_post_backward(params, optimizers, state, step, out.meta)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        counts.append(params["means"].shape[0])

    assert max(counts) > n0, "densification (duplicate/split) never triggered"
    assert len(set(counts)) > 1
    assert all(p.shape[0] == counts[-1] for p in params.values())
    assert losses[-1] < 0.4 * losses[0], (losses[0], losses[-1])


def test_prune_removes_transparent_gaussians():
    n = 30
    logits = torch.cat([torch.full((10,), -8.0), torch.full((20,), 1.0)])
    params = torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter(torch.rand(n, 3) * 0.6 - 0.3),
            "scales": torch.nn.Parameter(torch.full((n, 3), -3.0)),
            "quats": torch.nn.Parameter(torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)),
            "opacities": torch.nn.Parameter(logits.clone()),
            "sh0": torch.nn.Parameter(torch.zeros(n, 1, 3)),
        }
    )
    optimizers = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    # growth disabled: only the opacity pruning acts
    strategy = strategy_mod.DefaultStrategy(
        refine_start_iter=0, refine_every=1, reset_every=10_000, grow_grad2d=1e9
    )
    state = strategy.initialize_state()
    cams = Cameras.orbit([0.0], [0.0], radius=2.0, width=24, height=24)
    p = params
    g = Gaussians.from_raw(p["means"], p["quats"], p["scales"], p["opacities"], p["sh0"])
    out = render(g, cams, backend="torch")
    strategy.step_pre_backward(params, optimizers, state, 1, out.meta)
    out.rgb.sum().backward()
    strategy.step_post_backward(params, optimizers, state, 1, out.meta)
    assert params["means"].shape[0] == 20
    assert torch.allclose(params["opacities"].detach(), logits[10:])
