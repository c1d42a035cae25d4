"""Gaussians in the layout of viser's own WebGL splat display (``scene.add_gaussian_splats``).

The browser then sorts and draws the splats itself on the viewer's GPU: smooth orbiting where
the server renders slowly (a CPU), at the price of view-independent colour (the degree-0
spherical harmonic only) and viser's rasteriser instead of gs3d's.

viser 1.1 takes, per Gaussian, the centre, the world covariance ``Sigma = R S S^T R^T`` (3DGS
Eq. 6, ``S = diag(scales)`` of activated standard deviations, ``R`` from the ``wxyz``
quaternion), an RGB colour and an opacity, and packs them into 32 bytes: centres as float32,
the six upper-triangular covariance terms as float16 and colour and opacity as 8-bit integers
(``viser/_scene_api.py``, ``add_gaussian_splats``). float16 has 10 bits of mantissa and its
normal range starts at 6.1e-5, so the variance of a Gaussian of standard deviation 0.005 would
already be a subnormal with a coarse mantissa and one of 2e-4 would be zero. The splats are
therefore sent in a unit chosen so that the median variance is about 1, and the scene node is
scaled back by the same power of two: viser's vertex shader applies the node's full linear map
to both the centre and the covariance (``mat3(T_camera_group)`` in ``GaussianSplatsHelpers.ts``),
and a power of two changes no float32 centre bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.rendering.projection import quat_scale_to_covar


def splat_unit(covariances: torch.Tensor) -> float:
    """The power of two ``k`` such that ``covariances / k^2`` has a median diagonal term near 1
    (``1.0`` for an empty set): ``k = 2^round(log2(median variance) / 2)``."""
    if covariances.numel() == 0:
        return 1.0
    var = torch.diagonal(covariances, dim1=-2, dim2=-1).reshape(-1).double()
    median = float(var.median())
    if not median > 0.0 or not math.isfinite(median):
        return 1.0
    return 2.0 ** round(math.log2(median) / 2)


def splat_arrays(gaussians: Gaussians) -> dict[str, np.ndarray | float]:
    """Keyword arguments of viser's ``add_gaussian_splats`` for unbatched Gaussians ``[N]``.

    Returns ``centers [N, 3]`` and ``covariances [N, 3, 3]`` (float32, in units of ``scale``:
    ``means / scale`` and ``R S S^T R^T / scale^2``), ``rgbs [N, 3]`` (the diffuse colour,
    ``0.5 + C0 * sh[:, 0]`` clamped to [0, 1]) and ``opacities [N, 1]``, both as uint8
    rounded to the nearest of 255 steps (viser itself would truncate floats), and ``scale``, the
    float the scene node is scaled by.
    """
    if not isinstance(gaussians, Gaussians):
        raise ValidationError("gaussians", "gs_core.Gaussians", type(gaussians).__name__)
    g = gaussians.detach().to("cpu", torch.float64)
    if g.batch_shape:
        raise ValidationError("gaussians", "unbatched Gaussians [N]", f"batch {g.batch_shape}")
    cov = quat_scale_to_covar(g.quats, g.scales)
    k = splat_unit(cov)

    def to_uint8(x: torch.Tensor) -> np.ndarray:
        return x.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).numpy()

    return {
        "centers": (g.means / k).float().numpy(),
        "covariances": (cov / (k * k)).float().numpy(),
        "rgbs": to_uint8(g.colors),
        "opacities": to_uint8(g.opacities[:, None]),
        "scale": k,
    }


__all__ = ["splat_arrays", "splat_unit"]
