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


def _uniform(shape: int | tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(
        shape, generator=generator, device=generator.device if generator else None
    ).cpu()


def _axis_warps(
    size: int, n: int, generator: torch.Generator | None, strength: float
) -> torch.Tensor:
    """``n`` axes' normalised sample coordinates ``[n, size]``: each piecewise linear in the pixel
    index through its own 8 to 16 randomly moved breakpoints. All random numbers are drawn in
    two calls and the warps built on the host in one pass (a per-warp loop of small tensor ops
    cost about 20 ms of host time per batch of 16, and the GPU waited)."""
    max_steps = 16
    u = _uniform((n, 1 + max_steps), generator).double()
    steps = (8 + torch.floor(u[:, 0] * 9)).long()  # 8..16 per warp
    idx = torch.arange(max_steps, dtype=torch.float64)
    last = (steps - 1).double()[:, None]
    valid = idx[None] <= last  # [n, 16]: the warp's own breakpoints
    knots = -1.0 + 2.0 * idx[None] / last  # linspace(-1, 1, steps), padded beyond
    pos = (idx[None] / last + strength * (u[:, 1:] - 0.5) / last).clamp(0, 1)
    bounds = (pos * size).long()
    bounds[:, 0] = 0
    bounds = torch.where(valid, bounds, torch.full_like(bounds, size))
    bounds.scatter_(1, (steps - 1)[:, None], size)
    bounds = torch.cummax(bounds, 1).values  # [n, 16], non-decreasing, ends at size
    pixels = torch.arange(size)
    # Segment of each pixel: the last breakpoint at or before it (segments are [a, b)).
    seg = torch.searchsorted(bounds, pixels.expand(n, size).contiguous(), right=True) - 1
    a = bounds.gather(1, seg)
    width = bounds.gather(1, seg + 1) - a
    # Each segment is linspace(knot_i, knot_i+1, b - a): both ends included.
    frac = (pixels[None] - a).double() / (width - 1).clamp(min=1).double()
    k0, k1 = knots.gather(1, seg), knots.gather(1, seg + 1)
    return (k0 + (k1 - k0) * frac).float()


def grid_distortion(
    images: torch.Tensor, strength: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``images [N, C, H, W]`` -> warped ``[N, C, H, W]`` (bilinear, one random warp each)."""
    n, _, h, w = images.shape
    xs, ys = _axis_warps(w, n, generator, strength), _axis_warps(h, n, generator, strength)
    grid = torch.stack(
        [xs[:, None, :].expand(n, h, w), ys[:, :, None].expand(n, h, w)], -1
    )  # [N, H, W, 2]
    if images.is_cuda:  # one pinned copy the host does not wait for
        grid = grid.pin_memory().to(images.device, non_blocking=True)
    grid = grid.to(device=images.device, dtype=images.dtype)
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
    # One draw per sample and augmentation; the chosen samples are warped and jittered in one
    # batch each, so the step's host work does not grow with the batch.
    picks = _uniform((2, b), generator)
    warp = (picks[0] < prob_grid_distortion).nonzero().flatten().tolist()
    jitter = (picks[1] < prob_camera_jitter).nonzero().flatten().tolist()
    if warp:
        chosen = views[warp, 1:]
        views[warp, 1:] = grid_distortion(chosen.flatten(0, 1), grid_strength, generator).view_as(
            chosen
        )
    if jitter:
        moved = c2w[jitter, 1:]
        c2w[jitter, 1:] = orbit_camera_jitter(
            moved.flatten(0, 1), jitter_strength, generator
        ).view_as(moved)
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
