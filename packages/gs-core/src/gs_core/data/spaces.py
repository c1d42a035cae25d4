"""Which frame a sample's cameras (and points) are expressed in.

- ``world``: the dataset's own world frame.
- ``azimuth``: the world rotated about the up (y) axis so the input camera has azimuth 0 — AGG's
  "camera space with the input view azimuth normalised to zero" (Sec. 3.4): image and 3D target
  rotate together, which teaches rotation equivariance.
- ``camera``: a rigid transform that moves the input camera to the canonical pose (on the +z
  axis at its own distance, elevation 0, looking at the origin), as LGM normalises its first view.

Each returns ``T [4, 4]`` acting on world points (``p' = T p``); cameras transform as
``c2w' = T c2w``, i.e. ``viewmat' = viewmat T^-1``.
"""

from __future__ import annotations

import math

import numpy as np

from gs_core.errors import ValidationError

SPACES = ("world", "azimuth", "camera")


def azimuth_elevation(center: np.ndarray) -> tuple[float, float, float]:
    """Azimuth, elevation (degrees) and radius of a camera centre, as in ``Cameras.orbit``."""
    x, y, z = (float(v) for v in center)
    r = math.sqrt(x * x + y * y + z * z)
    az = math.degrees(math.atan2(x, z)) % 360.0
    el = math.degrees(math.asin(max(-1.0, min(1.0, y / r)))) if r > 0 else 0.0
    return az, el, r


def rotation_y(angle_deg: float) -> np.ndarray:
    """``[4, 4]`` rotation about +y; positive angles turn +z towards +x (increasing azimuth)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    T = np.eye(4)
    T[0, 0], T[0, 2], T[2, 0], T[2, 2] = c, s, -s, c
    return T


def canonical_c2w_cv(radius: float) -> np.ndarray:
    """OpenCV camera-to-world of a camera on +z at ``radius`` looking at the origin (y up)."""
    c2w = np.eye(4)
    # x right = +x, y down = -y, z forward = -z.
    c2w[:3, :3] = np.diag([1.0, -1.0, -1.0])
    c2w[2, 3] = radius
    return c2w


def space_transform(space: str, input_c2w_cv: np.ndarray) -> np.ndarray:
    """``T [4, 4]`` mapping world points into ``space`` given the input camera's OpenCV c2w."""
    if space == "world":
        return np.eye(4)
    center = input_c2w_cv[:3, 3]
    az, _, r = azimuth_elevation(center)
    if space == "azimuth":
        return rotation_y(-az)
    if space == "camera":
        return canonical_c2w_cv(r) @ np.linalg.inv(input_c2w_cv)
    raise ValidationError("space", f"one of {SPACES}", repr(space))
