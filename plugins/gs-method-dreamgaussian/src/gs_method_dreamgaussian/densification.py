"""DreamGaussian's densification through gsplat's strategy interface.

gsplat's :class:`~gsplat.strategy.DefaultStrategy` is INRIA 3DGS's clone / split / prune (its
split samples two children from the parent's Gaussian with scales / 1.6, its clone copies; its
statistic is the screen-space gradient norm in NDC units, as INRIA's). Where DreamGaussian's
``main.py`` / ``gs_renderer.py`` differ, this subclass follows them:

* statistics accumulate only from ``refine_start_iter`` (``density_start_iter``) to
  ``refine_stop_iter``, inclusive, and refinement runs at every multiple of ``refine_every`` in
  that range, the first one included (DefaultStrategy counts from step 0 and refines strictly
  after its start);
* the world-size prune (max scale above ``prune_scale3d x scene_scale``) runs at every
  refinement (DreamGaussian passes ``max_screen_size``, which switches it on; DefaultStrategy
  waits for the first opacity reset); the screen-size test is inert in both;
* the opacity reset clamps opacities to 0.01 at multiples of ``reset_every`` (INRIA's value);
* the statistic accumulates without DefaultStrategy's boolean indexing (the same sums), which
  waits for the GPU at every step of a launch-bound loop.

The statistic of one step comes from the novel-view render, the render whose ``means2d``
gradient the caller passes as ``info`` (main.py's last ``out``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from gsplat.strategy import DefaultStrategy
from gsplat.strategy.ops import remove, reset_opa

from gs_method_dreamgaussian.config import Stage1Config


@dataclass
class DreamGaussianStrategy(DefaultStrategy):
    """DefaultStrategy with DreamGaussian's schedule and prune (see the module docstring).

    ``params`` hold ``means [N, 3]``, ``scales [N, 3]`` (log), ``quats [N, 4]``, ``opacities
    [N]`` (logits) and ``sh0 [N, 1, 3]``, one Adam per parameter.
    """

    reset_value: float = 0.01

    @classmethod
    def from_config(cls, cfg: Stage1Config) -> DreamGaussianStrategy:
        return cls(
            prune_opa=cfg.prune_opacity,
            grow_grad2d=cfg.densify_grad_threshold,
            grow_scale3d=cfg.percent_dense,
            prune_scale3d=cfg.prune_scale,
            refine_start_iter=cfg.densify_from,
            refine_stop_iter=cfg.densify_until,
            refine_every=cfg.densify_every,
            reset_every=cfg.opacity_reset_every,
        )

    def step_post_backward(
        self,
        params: dict[str, torch.nn.Parameter] | torch.nn.ParameterDict,
        optimizers: dict[str, torch.optim.Optimizer],
        state: dict[str, Any],
        step: int,
        info: dict[str, Any],
        packed: bool = False,
    ) -> dict[str, int]:
        """Accumulate the statistic of ``step`` (1-based) and refine when due; returns the
        numbers duplicated, split and pruned (zeros when nothing ran)."""
        counts = {"duplicated": 0, "split": 0, "pruned": 0}
        if not self.refine_start_iter <= step <= self.refine_stop_iter:
            return counts
        self._update_state(params, state, info, packed=packed)
        if step % self.refine_every == 0:
            counts["duplicated"], counts["split"] = self._grow_gs(params, optimizers, state, step)
            counts["pruned"] = self._prune_gs(params, optimizers, state, step)
            state["grad2d"].zero_()
            state["count"].zero_()
        if step % self.reset_every == 0:
            reset_opa(params=params, optimizers=optimizers, state=state, value=self.reset_value)
        return counts

    @torch.no_grad()
    def _update_state(self, params, state, info, packed: bool = False) -> None:
        """DefaultStrategy's statistic (the NDC-unit norm of each visible Gaussian's
        screen-space gradient, and its count of visible cameras), summed with a mask instead
        of gathered through ``torch.where``: no host synchronisation. The packed layout and the
        2D-scale statistic (unused by DreamGaussian) go to gsplat's own code."""
        if packed or self.refine_scale2d_stop_iter > 0:
            return super()._update_state(params, state, info, packed=packed)
        means2d = info[self.key_for_gradient]
        grads = means2d.absgrad if self.absgrad else means2d.grad  # [C, N, 2]
        c = info["n_cameras"]
        norm = torch.hypot(
            grads[..., 0] * (info["width"] / 2.0 * c), grads[..., 1] * (info["height"] / 2.0 * c)
        )  # [C, N]
        visible = (info["radii"] > 0.0).all(dim=-1)  # [C, N]
        n = len(params["means"])
        for key in ("grad2d", "count"):
            if state[key] is None:
                state[key] = torch.zeros(n, device=grads.device)
        state["grad2d"] += torch.where(visible, norm, 0.0).sum(0)
        state["count"] += visible.sum(0)
        return None

    @torch.no_grad()
    def _prune_gs(self, params, optimizers, state, step: int) -> int:
        is_prune = torch.sigmoid(params["opacities"].flatten()) < self.prune_opa
        too_big = (
            torch.exp(params["scales"]).max(dim=-1).values
            > self.prune_scale3d * state["scene_scale"]
        )
        is_prune |= too_big
        n = int(is_prune.sum())
        if n:
            remove(params=params, optimizers=optimizers, state=state, mask=is_prune)
        return n


@torch.no_grad()
def prune_final(
    params: dict[str, torch.nn.Parameter],
    optimizers: dict[str, torch.optim.Optimizer],
    min_opacity: float,
    max_scale: float,
) -> int:
    """main.py's last prune before saving: opacity below ``min_opacity`` or max scale above
    ``max_scale`` (``prune(0.01, extent=1)``: 0.1). Returns the number removed."""
    is_prune = torch.sigmoid(params["opacities"].flatten()) < min_opacity
    is_prune |= torch.exp(params["scales"]).max(dim=-1).values > max_scale
    n = int(is_prune.sum())
    if n:
        remove(params=params, optimizers=optimizers, state={}, mask=is_prune)
    return n
