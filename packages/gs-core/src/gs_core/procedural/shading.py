"""Lambertian shading under fixed world-space lights.

The lights are fixed in the world, not to the camera, so an object's radiance does not depend
on the viewing direction: a degree-0 (view-independent) Gaussian fit can match the renders
exactly, and the coloured point cloud carries the same colours the images show.
"""

from __future__ import annotations

import numpy as np

AMBIENT = 0.3
# (unit direction towards the light, intensity); a key light from the upper front-right and a
# weaker fill from the lower back-left. Ambient + key + fill = 1, so a white albedo lit head-on
# by the key light stays just below clipping.
LIGHTS: tuple[tuple[tuple[float, float, float], float], ...] = (
    ((0.3713907, 0.7427814, 0.5570860), 0.55),
    ((-0.5547002, 0.2773501, -0.7844645), 0.15),
)


def lambert(albedo: np.ndarray, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray) -> np.ndarray:
    """Radiance ``[N, 3]`` in [0, 1] of albedo ``[N, 3]`` with world unit normals ``[N]`` each."""
    light = np.full(nx.shape, AMBIENT, np.float32)
    for (lx, ly, lz), k in LIGHTS:
        light += np.float32(k) * np.maximum(
            nx * np.float32(lx) + ny * np.float32(ly) + nz * np.float32(lz), 0
        )
    return np.clip(albedo * light[:, None], 0.0, 1.0)
