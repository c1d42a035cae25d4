"""DreamGaussian's cameras in gs3d's convention.

The official code (``cam_utils.orbit_camera``) puts a camera of elevation ``e`` at
``y = -r sin(e)``: its elevation grows *downwards*. gs3d's ``Cameras.orbit`` has ``y = r sin(e)``,
so every DreamGaussian elevation is negated here; azimuths agree (0 on +z, growing towards +x).
The sampling itself (integer offsets, bounds, exclusive upper end) is done in DreamGaussian's
sign so that it is the official one number for number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gs_core.cameras import Cameras
from gs_method_dreamgaussian.config import CameraConfig, Stage1Config

# save_model's 26 baking views, DreamGaussian's sign: 8 azimuths at elevations 0, -45, 45, then
# the two near-poles at azimuth 0 (89.9, where the y-up look-at stays defined).
BAKE_AZIMUTHS = (0.0, 45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0)
BAKE_ELEVATIONS_DG = (0.0, -45.0, 45.0)
BAKE_POLES_DG = (-89.9, 89.9)


def elevation_offset_bounds(cfg: CameraConfig) -> tuple[int, int]:
    """``(min_ver, max_ver)``: novel-view elevation offsets, DreamGaussian's sign, upper bound
    exclusive (``np.random.randint``). The absolute elevation stays within
    ``+-elevation_limit`` and the range always covers ``[min_ver, max_ver]`` of absolute
    elevation (main.py)."""
    e = -cfg.input_elevation_deg  # DreamGaussian's opt.elevation
    lo = max(min(cfg.min_ver, cfg.min_ver - e), -cfg.elevation_limit - e)
    hi = min(max(cfg.max_ver, cfg.max_ver - e), cfg.elevation_limit - e)
    return int(lo), int(hi)


@dataclass(frozen=True)
class NovelViews:
    """Sampled novel views ``[V]``: gs3d-sign absolute elevations and the offsets from the input
    view that condition Zero123 (``d_elevation`` gs3d sign, ``d_azimuth``), in degrees."""

    elevation: torch.Tensor
    azimuth: torch.Tensor
    d_elevation: torch.Tensor
    d_azimuth: torch.Tensor

    def cameras(self, cfg: CameraConfig, size: int, device=None) -> Cameras:
        return Cameras.orbit(
            self.azimuth,
            self.elevation,
            radius=cfg.radius,
            fov_deg=cfg.fov_deg,
            width=size,
            height=size,
            device=device,
        )


def sample_novel_views(
    cfg: CameraConfig, n: int, generator: torch.Generator | None = None
) -> NovelViews:
    """``n`` random views as main.py draws them: integer elevation offset in
    ``[min_ver, max_ver)`` and integer azimuth in ``[-180, 180)``, radius offset 0."""
    lo, hi = elevation_offset_bounds(cfg)
    ver = torch.randint(lo, hi, (n,), generator=generator).float()
    hor = torch.randint(-180, 180, (n,), generator=generator).float()
    return NovelViews(
        elevation=cfg.input_elevation_deg - ver,
        azimuth=hor,
        d_elevation=-ver,
        d_azimuth=hor,
    )


def reference_camera(cfg: CameraConfig, size: int | None = None, device=None) -> Cameras:
    """The input view's camera ``[1]``: azimuth 0 at the input elevation."""
    size = size or cfg.reference_size
    return Cameras.orbit(
        [0.0],
        [cfg.input_elevation_deg],
        radius=cfg.radius,
        fov_deg=cfg.fov_deg,
        width=size,
        height=size,
        device=device,
    )


def bake_cameras(cfg: CameraConfig, size: int, device=None) -> Cameras:
    """save_model's 26 views ``[26]`` at the training radius and field of view."""
    el_dg = [e for e in BAKE_ELEVATIONS_DG for _ in BAKE_AZIMUTHS] + list(BAKE_POLES_DG)
    az = list(BAKE_AZIMUTHS) * len(BAKE_ELEVATIONS_DG) + [0.0, 0.0]
    return Cameras.orbit(
        az,
        [-e for e in el_dg],
        radius=cfg.radius,
        fov_deg=cfg.fov_deg,
        width=size,
        height=size,
        device=device,
    )


def novel_resolution(cfg: Stage1Config, step_ratio: float) -> int:
    """Stage 1's novel-view render size at ``step_ratio`` (128 -> 256 at 0.3 -> 512 at 0.6)."""
    a, b = cfg.resolution_milestones
    small, mid, large = cfg.novel_resolutions
    return small if step_ratio < a else (mid if step_ratio < b else large)
