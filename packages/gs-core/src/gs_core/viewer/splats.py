"""Gaussians in the layout of viser's own WebGL splat display (``scene.add_gaussian_splats``).

The browser then sorts and draws the splats itself on the viewer's GPU: smooth orbiting where
the server renders slowly (a CPU), at the price of view-independent colour (the degree-0
spherical harmonic only) and viser's rasteriser instead of gs3d's.
"""

from __future__ import annotations

import numpy as np
import torch

from gs_core.gaussians import Gaussians
from gs_core.rendering.projection import quat_to_rotmat


def splat_arrays(gaussians: Gaussians) -> dict[str, np.ndarray]:
    """Keyword arrays of ``add_gaussian_splats`` for unbatched Gaussians ``[N]``.

    Returns ``centers [N, 3]``, ``covariances [N, 3, 3]`` (``R S S R^T``), ``rgbs [N, 3]`` in
    [0, 1] and ``opacities [N, 1]``, float32.
    """
    g = gaussians.detach().to("cpu", torch.float64)
    if g.batch_shape:
        raise ValueError(f"splat_arrays: expected unbatched Gaussians, got batch {g.batch_shape}")
    R = quat_to_rotmat(g.quats)
    M = R * g.scales[..., None, :]  # R @ diag(s)
    cov = M @ M.transpose(-1, -2)
    return {
        "centers": g.means.float().numpy(),
        "covariances": cov.float().numpy(),
        "rgbs": g.colors.float().numpy(),
        "opacities": g.opacities[:, None].float().numpy(),
    }


__all__ = ["splat_arrays"]
