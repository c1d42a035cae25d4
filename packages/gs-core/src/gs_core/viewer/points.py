"""Gaussians as viser's point cloud (``scene.add_point_cloud``): one round point per Gaussian.

The cheapest display there is: the browser draws ``N`` small discs with no sorting and no
blending, which stays interactive where WebGL runs in software (a browser without a GPU, e.g.
on a 2-core server; ``benchmarks/viewer.py``). It is an approximation - every point is opaque,
of one size, in the diffuse colour - so nearly transparent Gaussians (opacity below
``min_opacity``) are left out rather than drawn as solid dots.
"""

from __future__ import annotations

import numpy as np
import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians

# A point's diameter in multiples of the median of the Gaussians' largest standard deviation:
# about the extent within which a Gaussian covers its pixels with more than half its opacity.
POINT_DIAMETER_SIGMAS = 2.5
MIN_OPACITY = 0.1


def point_arrays(gaussians: Gaussians, min_opacity: float = MIN_OPACITY) -> dict:
    """Keyword arguments of viser's ``add_point_cloud`` for unbatched Gaussians ``[N]``:
    ``points [M, 3]`` float32, ``colors [M, 3]`` uint8 (the diffuse colour), ``point_size``
    (world units) and ``point_shape``; ``M`` counts the Gaussians with opacity >=
    ``min_opacity``."""
    if not isinstance(gaussians, Gaussians):
        raise ValidationError("gaussians", "gs_core.Gaussians", type(gaussians).__name__)
    g = gaussians.detach().to("cpu", torch.float32)
    if g.batch_shape:
        raise ValidationError("gaussians", "unbatched Gaussians [N]", f"batch {g.batch_shape}")
    keep = g.opacities >= min_opacity
    sigma = g.scales.amax(dim=-1)
    size = float(sigma[keep].median()) if keep.any() else 0.01
    colors = g.colors[keep].clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return {
        "points": g.means[keep].numpy().astype(np.float32),
        "colors": colors.numpy(),
        "point_size": POINT_DIAMETER_SIGMAS * size,
        "point_shape": "circle",
    }


__all__ = ["MIN_OPACITY", "POINT_DIAMETER_SIGMAS", "point_arrays"]
