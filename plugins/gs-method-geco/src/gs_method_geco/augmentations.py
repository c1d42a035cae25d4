"""LGM's two training augmentations of its input views (facts from 3DTopia/LGM ``core/utils.py``
and ``core/provider_objaverse.py``; the code is ours), drawn from a ``torch.Generator``.

* grid distortion: each image is resampled through a random piecewise-linear warp of each axis,
  with 8 to 16 breakpoints per axis moved by up to ``strength / 2`` of a segment;
* orbital camera jitter: each camera is rotated about the world origin, by up to
  ``strength * pi`` about its own up axis and ``strength * pi / 2`` about its right axis, so the
  input poses the network sees are slightly wrong, as generated views' implied poses are.

LGM applies each with probability 0.5 per sample to every input view but the first, which
anchors the pose normalisation; :func:`augment_views` does the same.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gs_core.cameras import Cameras


def _uniform(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device if generator else None).cpu()


def _axis_warp(size: int, generator: torch.Generator | None, strength: float) -> torch.Tensor:
    """Normalised sample coordinates ``[size]`` of one axis: piecewise linear in the pixel index
    through randomly moved breakpoints."""
    steps = int(8 + math.floor(_uniform(1, generator).item() * 9))  # 8..16
    knots = torch.linspace(-1.0, 1.0, steps, dtype=torch.float64)
    pos = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    pos = (pos + strength * (_uniform(steps, generator).double() - 0.5) / (steps - 1)).clamp(0, 1)
    bounds = (pos * size).long()
    bounds[0], bounds[-1] = 0, size
    bounds = torch.cummax(bounds, 0).values
    out = torch.empty(size, dtype=torch.float64)
    for i in range(steps - 1):
        a, b = int(bounds[i]), int(bounds[i + 1])
        if b > a:
            out[a:b] = torch.linspace(
                float(knots[i]), float(knots[i + 1]), b - a, dtype=torch.float64
            )
    return out.float()


def grid_distortion(
    images: torch.Tensor, strength: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``images [N, C, H, W]`` -> warped ``[N, C, H, W]`` (bilinear, one random warp each)."""
    n, _, h, w = images.shape
    grids = []
    for _ in range(n):
        xs, ys = _axis_warp(w, generator, strength), _axis_warp(h, generator, strength)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grids.append(torch.stack([gx, gy], -1))
    grid = torch.stack(grids).to(device=images.device, dtype=images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", align_corners=False)


def _rotation(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: unit ``axis [N, 3]``, ``angle [N]`` -> ``[N, 3, 3]``."""
    k = F.normalize(axis, dim=-1)
    zero = torch.zeros_like(angle)
    kx, ky, kz = k.unbind(-1)
    skew = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], -1).view(-1, 3, 3)
    s, c = angle.sin()[:, None, None], angle.cos()[:, None, None]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device).expand_as(skew)
    return eye + s * skew + (1 - c) * (skew @ skew)


def orbit_camera_jitter(
    camtoworlds: torch.Tensor, strength: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Camera-to-world ``[N, 4, 4]`` -> jittered ``[N, 4, 4]`` (see the module docstring).

    The angles are symmetric, so OpenCV and OpenGL camera axes (which differ in the sign of up)
    give the same distribution."""
    n = camtoworlds.shape[0]
    c2w = camtoworlds.double()
    up, right = c2w[:, :3, 1], c2w[:, :3, 0]
    a_up = strength * math.pi * (_uniform(n, generator).double() * 2 - 1)
    a_right = strength * math.pi / 2 * (_uniform(n, generator).double() * 2 - 1)
    rot = _rotation(up, a_up.to(c2w.device)) @ _rotation(right, a_right.to(c2w.device))
    out = c2w.clone()
    out[:, :3, :3] = rot @ c2w[:, :3, :3]
    out[:, :3, 3:] = rot @ c2w[:, :3, 3:]
    return out.to(camtoworlds.dtype)


def augment_views(
    views: torch.Tensor,
    cameras: Cameras,
    *,
    prob_grid_distortion: float,
    grid_strength: float,
    prob_camera_jitter: float,
    jitter_strength: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, Cameras]:
    """LGM's augmentations of one batch: ``views [B, V, C, H, W]`` and ``V`` shared cameras ->
    augmented views and cameras of batch shape ``[B]`` (views ``1..V-1`` only)."""
    b, v = views.shape[:2]
    views = views.clone()
    c2w = (
        cameras.camtoworlds.expand(b, v, 4, 4).clone()
        if cameras.batch_shape == ()
        else (cameras.camtoworlds.clone())
    )
    for i in range(b):
        if _uniform(1, generator).item() < prob_grid_distortion:
            views[i, 1:] = grid_distortion(views[i, 1:], grid_strength, generator)
        if _uniform(1, generator).item() < prob_camera_jitter:
            c2w[i, 1:] = orbit_camera_jitter(c2w[i, 1:], jitter_strength, generator)
    ks = cameras.Ks.expand(b, v, 3, 3) if cameras.batch_shape == () else cameras.Ks
    out = Cameras(
        viewmats=torch.linalg.inv(c2w),
        Ks=ks.contiguous(),
        width=cameras.width,
        height=cameras.height,
    )
    return views, out


def augment_as_configured(
    config, views: torch.Tensor, cameras: Cameras, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, Cameras]:
    """:func:`augment_views` with the probabilities and strengths of a ``ReconstructorConfig``
    (R's own training and the joint stage augment alike)."""
    return augment_views(
        views,
        cameras,
        prob_grid_distortion=config.prob_grid_distortion,
        grid_strength=config.grid_distortion_strength,
        prob_camera_jitter=config.prob_camera_jitter,
        jitter_strength=config.camera_jitter_strength,
        generator=generator,
    )


__all__ = ["augment_as_configured", "augment_views", "grid_distortion", "orbit_camera_jitter"]
