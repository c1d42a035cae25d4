"""The browser's camera as gs_core :class:`~gs_core.cameras.Cameras`.

viser reports each client's camera as ``wxyz``, a unit quaternion holding the rotation ``R`` of
``P_world = R p_camera + t``, and ``position`` (``t``), with the camera axes of OpenCV (x right,
y down, z the look direction), plus the vertical field of view in radians and the canvas
aspect ratio. :class:`Cameras` hold the inverse, world-to-camera, in the same axes, so the
conversion is one rigid inverse and square-pixel intrinsics built from the vertical field of
view, centred on the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gs_core.cameras import Cameras, intrinsics
from gs_core.errors import ValidationError
from gs_core.rendering.projection import quat_to_rotmat
from gs_core.rotations import quaternion_of_rotation

# Quaternions shorter than this carry no rotation; viser sends unit ones.
_MIN_QUAT_NORM = 1e-6


@dataclass(frozen=True)
class ViewerCamera:
    """One pose of a browser camera, as viser reports it.

    Fields:
        wxyz: rotation world-from-camera (OpenCV camera axes), a unit quaternion.
        position: camera centre in world coordinates.
        fov_y: vertical field of view in radians, in (0, pi).
        aspect: canvas width / height.
    """

    wxyz: tuple[float, float, float, float]
    position: tuple[float, float, float]
    fov_y: float
    aspect: float

    def __post_init__(self) -> None:
        values = (*self.wxyz, *self.position, self.fov_y, self.aspect)
        if len(self.wxyz) != 4 or len(self.position) != 3:
            raise ValidationError(
                "ViewerCamera",
                "wxyz of 4 and position of 3 numbers",
                f"{self.wxyz}, {self.position}",
            )
        if not all(math.isfinite(float(v)) for v in values):
            raise ValidationError("ViewerCamera", "finite numbers", repr(values))
        if math.sqrt(sum(float(q) ** 2 for q in self.wxyz)) < _MIN_QUAT_NORM:
            raise ValidationError("ViewerCamera.wxyz", "a non-zero quaternion", repr(self.wxyz))
        if not 0.0 < self.fov_y < math.pi:
            raise ValidationError("ViewerCamera.fov_y", "radians in (0, pi)", repr(self.fov_y))
        if not self.aspect > 0.0:
            raise ValidationError(
                "ViewerCamera.aspect", "a positive width / height", repr(self.aspect)
            )

    @classmethod
    def from_viser(cls, camera) -> ViewerCamera:
        """From a ``viser.CameraHandle`` (``client.camera``)."""
        return cls(
            wxyz=tuple(float(v) for v in camera.wxyz),  # type: ignore[arg-type]
            position=tuple(float(v) for v in camera.position),  # type: ignore[arg-type]
            fov_y=float(camera.fov),
            aspect=float(camera.aspect),
        )

    @classmethod
    def looking_at(
        cls,
        eye: tuple[float, float, float],
        target: tuple[float, float, float],
        *,
        fov_y: float,
        aspect: float,
        up: tuple[float, float, float] = (0.0, 1.0, 0.0),
    ) -> ViewerCamera:
        """The pose viser reports for a camera at ``eye`` looking at ``target`` with ``up`` up
        (as its orbit controls place it)."""
        from gs_core.cameras import look_at

        R = look_at(
            torch.tensor(eye, dtype=torch.float64),
            torch.tensor(target, dtype=torch.float64),
            torch.tensor(up, dtype=torch.float64),
        )[:3, :3]
        position = tuple(float(v) for v in eye)
        return cls(wxyz_from_rotation(R), position, float(fov_y), float(aspect))  # type: ignore[arg-type]

    def camtoworld(self) -> torch.Tensor:
        """``[4, 4]`` float64 OpenCV camera-to-world matrix."""
        q = torch.tensor(self.wxyz, dtype=torch.float64)
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[:3, :3] = quat_to_rotmat(q)
        c2w[:3, 3] = torch.tensor(self.position, dtype=torch.float64)
        return c2w


def wxyz_from_rotation(R: torch.Tensor) -> tuple[float, float, float, float]:
    """Unit quaternion ``(w, x, y, z)`` of a rotation matrix ``[3, 3]``, as viser takes it."""
    return tuple(quaternion_of_rotation(R).tolist())  # type: ignore[return-value]


def render_size(aspect: float, resolution: int) -> tuple[int, int]:
    """``(width, height)`` of an image of the canvas' ``aspect`` whose longer side is
    ``resolution`` pixels (the browser stretches it over the canvas)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValidationError("resolution", "a positive int", repr(resolution))
    if aspect >= 1.0:
        return resolution, max(1, round(resolution / aspect))
    return max(1, round(resolution * aspect)), resolution


def to_cameras(
    view: ViewerCamera, resolution: int, device: str | torch.device | None = None
) -> Cameras:
    """One gs_core camera (``C = 1``) seeing what the browser sees, rendered at ``resolution``
    pixels on the longer side.

    The rotation is inverted in float64 (a rigid inverse, ``R^T`` and ``-R^T t``) so a camera far
    from the origin keeps its precision; the pixels are square, ``fy = (H / 2) / tan(fov_y / 2)``,
    with the principal point at the image centre as in the browser's perspective projection.
    """
    width, height = render_size(view.aspect, resolution)
    c2w = view.camtoworld()
    R, t = c2w[:3, :3], c2w[:3, 3]
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, :3] = R.T
    w2c[:3, 3] = -(R.T @ t)
    f = 0.5 * height / math.tan(0.5 * view.fov_y)
    K = intrinsics(f, f, width / 2, height / 2, dtype=torch.float64)
    return Cameras(
        viewmats=w2c[None].to(device=device, dtype=torch.float32),
        Ks=K[None].to(device=device, dtype=torch.float32),
        width=width,
        height=height,
    )


__all__ = ["ViewerCamera", "render_size", "to_cameras", "wxyz_from_rotation"]
