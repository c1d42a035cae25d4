"""The cameras of DD3G: the teacher's view sets ``C``, the verifier's random views and the
random backgrounds of Eq. 8.

All views orbit the origin in gs_core's azimuth-normalised frame (y up, the input image seen
from azimuth 0), so the student's Gaussians are rendered at exactly the cameras the teacher
denoised for (``ImageDreamGuidance.condition`` takes the same :class:`Cameras`).
"""

from __future__ import annotations

import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError


def orbit_views(
    azimuths_deg: torch.Tensor,
    elevations_deg: torch.Tensor,
    radius: float,
    fov_deg: float,
    resolution: int,
    device: torch.device | str | None = None,
) -> Cameras:
    """Cameras ``[B, V]`` on ``device`` (default: the angles') from angle tensors ``[B, V]``
    (degrees). Angles on the CPU cost no synchronisation; CUDA angles are read back."""
    if azimuths_deg.ndim != 2 or azimuths_deg.shape != elevations_deg.shape:
        raise ValidationError(
            "azimuths_deg / elevations_deg",
            "two tensors of one shape [B, V]",
            f"{tuple(azimuths_deg.shape)} and {tuple(elevations_deg.shape)}",
        )
    b, v = azimuths_deg.shape
    # Built on the host and moved without waiting (Cameras.orbit); device angles are read back,
    # so training loops pass host angles and the device.
    flat = Cameras.orbit(
        azimuths_deg.detach().cpu().double().reshape(-1),
        elevations_deg.detach().cpu().double().reshape(-1),
        radius=radius,
        fov_deg=fov_deg,
        width=resolution,
        height=resolution,
        device=azimuths_deg.device if device is None else device,
    )
    return Cameras(
        viewmats=flat.viewmats.reshape(b, v, 4, 4),
        Ks=flat.Ks.reshape(b, v, 3, 3),
        width=resolution,
        height=resolution,
    )


def _uniform(
    shape: tuple[int, ...], low: float, high: float, generator: torch.Generator | None, device
) -> torch.Tensor:
    src = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=src, dtype=torch.float64).to(device)
    return low + (high - low) * u


def random_view_sets(
    batch: int,
    num_views: int,
    elevation_range: tuple[float, float],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random ``C`` of Sec. III-E: ``num_views`` views evenly spaced in azimuth from a
    uniform random start, one elevation per set (ImageDream's orthogonal views).

    Returns ``(azimuths, elevations)`` in degrees, each ``[batch, num_views]``.
    """
    start = _uniform((batch, 1), 0.0, 360.0, generator, device)
    step = 360.0 / num_views * torch.arange(num_views, dtype=torch.float64, device=device)
    az = torch.remainder(start + step, 360.0)
    el = _uniform((batch, 1), *elevation_range, generator, device).expand(batch, num_views)
    return az.float(), el.float().contiguous()


def random_verification_views(
    batch: int,
    num_views: int,
    azimuth_range: tuple[float, float],
    pitch_range: tuple[float, float],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random cameras ``c~`` of Eq. 5: a multi-view set (``num_views`` views 360/n apart,
    as the verifier denoises) whose first azimuth is uniform in ``azimuth_range`` and whose
    pitch is uniform in ``pitch_range`` (IV-A: [-180, 180] and [-5, 5] degrees)."""
    start = _uniform((batch, 1), *azimuth_range, generator, device)
    step = 360.0 / num_views * torch.arange(num_views, dtype=torch.float64, device=device)
    az = torch.remainder(start + step + 180.0, 360.0) - 180.0
    el = _uniform((batch, 1), *pitch_range, generator, device).expand(batch, num_views)
    return az.float(), el.float().contiguous()


def random_background(
    shape: tuple[int, ...], generator: torch.Generator | None = None, device="cpu"
) -> torch.Tensor:
    """Eq. 8: ``bgc = 1 - (1 - zeta)^3``, ``zeta ~ U(0, 1)`` per channel (in [0, 1] instead of
    [0, 255]); ``shape`` ends in 3. Biased towards light colours, as the teacher's white."""
    zeta = _uniform(shape, 0.0, 1.0, generator, device).float()
    return 1.0 - (1.0 - zeta) ** 3


def plucker_inputs(cameras: Cameras, size: int) -> torch.Tensor:
    """Plücker rays ``[B, V, 6, size, size]`` of cameras ``[B, V]`` at the latent resolution."""
    return cameras.resized(size, size).plucker_rays().float()


__all__ = [
    "orbit_views",
    "plucker_inputs",
    "random_background",
    "random_verification_views",
    "random_view_sets",
]
