"""Pinhole cameras in the OpenCV convention (x right, y down, z forward), batched like gsplat.

World convention used by the constructors here (and by the procedural world): y is up, an
orbit camera at azimuth 0 / elevation 0 sits on the +z axis looking at the origin, positive
elevation lifts the camera above the object, and increasing azimuth moves it towards +x.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gs_core.errors import ValidationError

# OpenGL/Blender camera axes (x right, y up, z backward) -> OpenCV (x right, y down, z forward)
_GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def _as_tensor(x, dtype=torch.float32, device=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device if device is not None else x.device)
    return torch.as_tensor(x, dtype=dtype, device=device)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """OpenCV camera-to-world ``[..., 4, 4]`` for cameras at ``eye [..., 3]`` looking at ``target``."""
    fwd = target - eye
    fwd = fwd / fwd.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    up = up.expand_as(fwd)
    right = torch.linalg.cross(fwd, up, dim=-1)
    # Looking straight up or down: any horizontal right vector will do.
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
    alt = torch.linalg.cross(
        fwd,
        torch.tensor([0.0, 0.0, -1.0], dtype=fwd.dtype, device=fwd.device).expand_as(fwd),
        dim=-1,
    )
    right = torch.where(degenerate, alt, right)
    right = right / right.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    down = torch.linalg.cross(fwd, right, dim=-1)
    c2w = torch.zeros((*eye.shape[:-1], 4, 4), dtype=eye.dtype, device=eye.device)
    c2w[..., :3, 0] = right
    c2w[..., :3, 1] = down
    c2w[..., :3, 2] = fwd
    c2w[..., :3, 3] = eye
    c2w[..., 3, 3] = 1.0
    return c2w


def focal_from_fov(fov_deg: float, size: int) -> float:
    """Focal length in pixels for a field of view spanning ``size`` pixels."""
    return 0.5 * size / math.tan(math.radians(fov_deg) / 2)


def intrinsics(
    fx: float, fy: float, cx: float, cy: float, dtype=torch.float32, device=None
) -> torch.Tensor:
    K = torch.zeros(3, 3, dtype=dtype, device=device)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[2, 2] = fx, fy, cx, cy, 1.0
    return K


@dataclass(frozen=True, eq=False)
class Cameras:
    """A batch of pinhole cameras.

    Fields:
        viewmats: ``[..., C, 4, 4]`` world-to-camera matrices, OpenCV convention.
        Ks:       ``[..., C, 3, 3]`` intrinsics in pixels (pixel centres at +0.5).
        width, height: image size in pixels, shared by all cameras.
    """

    viewmats: torch.Tensor
    Ks: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        v, k = self.viewmats, self.Ks
        if not isinstance(v, torch.Tensor) or v.ndim < 3 or v.shape[-2:] != (4, 4):
            raise ValidationError("Cameras.viewmats", "a tensor of shape [..., C, 4, 4]", _desc(v))
        if not isinstance(k, torch.Tensor) or k.shape != (*v.shape[:-2], 3, 3):
            raise ValidationError(
                "Cameras.Ks", f"shape [..., C, 3, 3] = {(*v.shape[:-2], 3, 3)}", _desc(k)
            )
        for name in ("width", "height"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
                raise ValidationError(f"Cameras.{name}", "a positive int", repr(val))
        if v.device != k.device:
            raise ValidationError(
                "Cameras", "viewmats and Ks on one device", f"{v.device} vs {k.device}"
            )
        if v.device.type != "cpu":
            # Reading the check back would synchronise every construction on a GPU (training
            # loops build cameras every step); CPU-built cameras, orbit's included, are checked
            # before they move, and render() checks finiteness on the same rule.
            return
        with torch.no_grad():
            for name, t in (("viewmats", v), ("Ks", k)):
                if not bool(torch.isfinite(t).all()):
                    raise ValidationError(f"Cameras.{name}", "finite values", "NaN/Inf entries")

    # ------------------------------------------------------------------ properties
    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.viewmats.shape[:-3])

    @property
    def n_cameras(self) -> int:
        return self.viewmats.shape[-3]

    def __len__(self) -> int:
        return self.n_cameras

    @property
    def device(self) -> torch.device:
        return self.viewmats.device

    @property
    def camtoworlds(self) -> torch.Tensor:
        """``[..., C, 4, 4]`` OpenCV camera-to-world matrices."""
        return torch.linalg.inv(self.viewmats)

    @property
    def centers(self) -> torch.Tensor:
        """``[..., C, 3]`` camera centres in world space."""
        R = self.viewmats[..., :3, :3]
        t = self.viewmats[..., :3, 3:]
        return -(R.transpose(-1, -2) @ t)[..., 0]

    # ------------------------------------------------------------------ constructors
    @classmethod
    def orbit(
        cls,
        azimuths_deg: Sequence[float] | torch.Tensor,
        elevations_deg: Sequence[float] | torch.Tensor | float,
        radius: float | Sequence[float] | torch.Tensor = 2.0,
        fov_deg: float = 49.1,
        width: int = 256,
        height: int = 256,
        target: Sequence[float] = (0.0, 0.0, 0.0),
        device=None,
        dtype=torch.float32,
    ) -> Cameras:
        """Cameras on a sphere around ``target`` looking at it (y-up world).

        ``fov_deg`` is the vertical field of view (LGM / Zero123 use 49.1). Elevations and
        radii broadcast against the azimuths; the result has ``C = len(azimuths)``. Built and
        checked on the CPU, then moved to ``device`` without waiting for the GPU.
        """
        az = torch.deg2rad(_as_tensor(azimuths_deg, torch.float64).reshape(-1))
        el = torch.deg2rad(_as_tensor(elevations_deg, torch.float64).reshape(-1))
        r = _as_tensor(radius, torch.float64).reshape(-1)
        az, el, r = torch.broadcast_tensors(az, el, r)
        eye = torch.stack(
            [
                r * torch.cos(el) * torch.sin(az),
                r * torch.sin(el),
                r * torch.cos(el) * torch.cos(az),
            ],
            -1,
        )
        tgt = torch.tensor(target, dtype=torch.float64)
        eye = eye + tgt
        up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        c2w = look_at(eye, tgt.expand_as(eye), up)
        f = focal_from_fov(fov_deg, height)
        K = intrinsics(f, f, width / 2, height / 2, dtype=torch.float64).expand(len(az), 3, 3)
        cams = cls(
            viewmats=torch.linalg.inv(c2w).to(dtype),
            Ks=K.to(dtype).contiguous(),
            width=int(width),
            height=int(height),
        )
        if device is None or torch.device(device).type == "cpu":
            return cams
        from gs_core.devices import to_device_async

        # One copy for both, so one pinned block and one transfer per call.
        packed = torch.cat([cams.viewmats.flatten(1), cams.Ks.flatten(1)], 1)
        packed = to_device_async(packed, device)
        return cls(
            viewmats=packed[:, :16].reshape(-1, 4, 4).contiguous(),
            Ks=packed[:, 16:].reshape(-1, 3, 3).contiguous(),
            width=cams.width,
            height=cams.height,
        )

    @classmethod
    def from_camtoworlds_opengl(
        cls,
        c2w: torch.Tensor,
        width: int,
        height: int,
        camera_angle_x: float | None = None,
        fl_x: float | None = None,
        fl_y: float | None = None,
        cx: float | None = None,
        cy: float | None = None,
    ) -> Cameras:
        """From NeRF/Blender ``transforms.json`` data: OpenGL camera-to-world ``[..., C, 4, 4]``.

        Give either ``camera_angle_x`` (horizontal FOV in radians) or ``fl_x`` (and optionally
        ``fl_y``, ``cx``, ``cy``) in pixels at ``width`` x ``height``.
        """
        c2w = _as_tensor(c2w, torch.float64)
        if c2w.ndim < 3 or c2w.shape[-2:] != (4, 4):
            if c2w.ndim >= 3 and c2w.shape[-2:] == (3, 4):
                bottom = torch.zeros((*c2w.shape[:-2], 1, 4), dtype=c2w.dtype)
                bottom[..., 0, 3] = 1
                c2w = torch.cat([c2w, bottom], -2)
            else:
                raise ValidationError(
                    "transform_matrix", "[C, 4, 4] camera-to-world matrices", _desc(c2w)
                )
        if fl_x is None:
            if camera_angle_x is None:
                raise ValidationError("intrinsics", "camera_angle_x or fl_x")
            fl_x = 0.5 * width / math.tan(camera_angle_x / 2)
        fl_y = fl_x if fl_y is None else fl_y
        cx = width / 2 if cx is None else cx
        cy = height / 2 if cy is None else cy
        c2w_cv = c2w @ _GL_TO_CV.to(c2w.dtype)
        K = intrinsics(fl_x, fl_y, cx, cy, dtype=torch.float64).expand(*c2w.shape[:-2], 3, 3)
        return cls(
            viewmats=torch.linalg.inv(c2w_cv).float(),
            Ks=K.float().contiguous(),
            width=int(width),
            height=int(height),
        )

    def camtoworlds_opengl(self) -> torch.Tensor:
        """``[..., C, 4, 4]`` OpenGL camera-to-world, as stored in ``transforms.json``."""
        return self.camtoworlds @ _GL_TO_CV.to(self.viewmats.dtype).to(self.device)

    # ------------------------------------------------------------------ rays
    def rays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """World-space ray origins and unit directions through pixel centres.

        Returns ``origins, directions``, each ``[..., C, H, W, 3]``.
        """
        H, W = self.height, self.width
        dev, dt = self.viewmats.device, self.viewmats.dtype
        v, u = torch.meshgrid(
            torch.arange(H, device=dev, dtype=dt) + 0.5,
            torch.arange(W, device=dev, dtype=dt) + 0.5,
            indexing="ij",
        )
        K = self.Ks[..., None, None, :, :]  # [..., C, 1, 1, 3, 3]
        x = (u - K[..., 0, 2]) / K[..., 0, 0]
        y = (v - K[..., 1, 2]) / K[..., 1, 1]
        d_cam = torch.stack([x, y, torch.ones_like(x)], -1)  # [..., C, H, W, 3]
        # Geometry in the cameras' dtype even inside a bf16 autocast region (a training step):
        # autocast would round the rotation to bf16 and leave the origins in float32.
        with torch.autocast(dev.type, enabled=False):
            c2w = self.camtoworlds
            R = c2w[..., None, None, :3, :3]
            d = (R @ d_cam[..., None])[..., 0]
            d = d / d.norm(dim=-1, keepdim=True)
            o = c2w[..., None, None, :3, 3].expand_as(d)
        return o, d

    def plucker_rays(self) -> torch.Tensor:
        """Plücker ray embedding ``[..., C, 6, H, W]`` = ``[o x d, d]`` (as LGM and DD3G)."""
        o, d = self.rays()
        emb = torch.cat([torch.linalg.cross(o, d, dim=-1), d], -1)
        return emb.movedim(-1, -3)

    # ------------------------------------------------------------------ transforms
    def to(self, *args, **kwargs) -> Cameras:
        """Cameras on another device / dtype; ``self`` when nothing changes (no new validation,
        which reads values on the host and so cannot run inside a CUDA-graph capture)."""
        viewmats, Ks = self.viewmats.to(*args, **kwargs), self.Ks.to(*args, **kwargs)
        if viewmats is self.viewmats and Ks is self.Ks:
            return self
        return Cameras(viewmats, Ks, self.width, self.height)

    def resized(self, width: int, height: int) -> Cameras:
        """Same cameras at another resolution (intrinsics scaled)."""
        sx, sy = width / self.width, height / self.height
        K = self.Ks.clone()
        K[..., 0, :] *= sx
        K[..., 1, :] *= sy
        return Cameras(self.viewmats, K, int(width), int(height))

    def select(self, index) -> Cameras:
        """Select cameras along C."""
        nb = len(self.batch_shape)
        lead = (slice(None),) * nb
        v = self.viewmats[(*lead, index)]
        k = self.Ks[(*lead, index)]
        if v.ndim == nb + 2:
            v, k = v.unsqueeze(nb), k.unsqueeze(nb)
        return Cameras(v, k, self.width, self.height)

    def __getitem__(self, b) -> Cameras:
        """Index the leading batch dims (not C)."""
        if not self.batch_shape:
            raise ValidationError("Cameras[...]", "leading batch dims to index", "none")
        return Cameras(self.viewmats[b], self.Ks[b], self.width, self.height)

    @staticmethod
    def concat(items: Sequence[Cameras]) -> Cameras:
        """Concatenate along C; sizes and batch shapes must match."""
        w, h = items[0].width, items[0].height
        for i, c in enumerate(items):
            if (c.width, c.height) != (w, h):
                raise ValidationError(
                    f"Cameras.concat(items[{i}])", f"size {w}x{h}", f"{c.width}x{c.height}"
                )
        return Cameras(
            torch.cat([c.viewmats for c in items], -3), torch.cat([c.Ks for c in items], -3), w, h
        )

    def __repr__(self) -> str:
        return f"Cameras(batch={self.batch_shape}, n={self.n_cameras}, {self.width}x{self.height})"


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)}"
    return type(x).__name__
