"""``render``: the one differentiable Gaussian renderer every gs3d method trains through."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.rendering.gsplat_backend import (
    BackendUnavailableError,
    _probe,
    render_gsplat,
    require_gsplat,
)
from gs_core.rendering.numba_compositing import numba_available
from gs_core.rendering.sh import MAX_SH_DEGREE
from gs_core.rendering.torch_backend import render_torch

RenderMode = Literal["RGB", "RGB+D", "RGB+ED", "D", "ED"]
Backend = Literal["auto", "torch", "gsplat", "numba"]
RasterizeMode = Literal["classic", "antialiased"]

MODES = ("RGB", "RGB+D", "RGB+ED", "D", "ED")
BACKENDS = ("auto", "torch", "gsplat", "numba")
RASTERIZE_MODES = ("classic", "antialiased")


@dataclass
class RenderOutput:
    """Images rendered for ``C`` cameras, with the Gaussians' and cameras' batch dims ``...``.

    rgb:   ``[..., C, H, W, 3]`` (background composited) or ``None`` in "D"/"ED" modes.
    alpha: ``[..., C, H, W, 1]`` accumulated opacity ``1 - T``.
    depth: ``[..., C, H, W, 1]`` in "+D"/"D" modes the accumulated ``sum w z``; in "ED" modes
           the expected depth ``sum w z / alpha``; ``None`` in "RGB" mode.
    meta:  gsplat-style intermediate results: at least ``means2d [..., C, N, 2]`` (its
           ``.grad`` is retained for densification when the Gaussians require grad),
           ``radii [..., C, N, 2]`` (0 = culled), ``depths``, ``width``, ``height``,
           ``n_cameras``, ``backend``.
    """

    rgb: torch.Tensor | None
    alpha: torch.Tensor
    depth: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _choose_backend(
    backend: str, device: torch.device, dtype: torch.dtype, needs_grad: bool
) -> str:
    if backend == "torch":
        return "torch"
    if backend == "numba":
        _require_numba(device, needs_grad)
        return "numba"
    if backend == "gsplat":
        require_gsplat(device)
        if dtype != torch.float32:
            raise ValidationError("gaussians", "float32 tensors for backend='gsplat'", str(dtype))
        return "gsplat"
    if device.type == "cpu" and not needs_grad and numba_available():
        return "numba"
    if device.type != "cuda" or dtype != torch.float32:
        return "torch"
    reason = _probe()
    if reason is None:
        return "gsplat"
    warnings.warn(
        f"render(backend='auto'): using the torch backend on CUDA because {reason}",
        stacklevel=3,
    )
    return "torch"


def _require_numba(device: torch.device, needs_grad: bool) -> None:
    """Raise :class:`BackendUnavailableError` saying why backend='numba' cannot render here."""
    if device.type != "cpu":
        raise BackendUnavailableError(
            f"backend='numba' renders CPU tensors only, but the Gaussians are on {device}; "
            "use backend='auto'"
        )
    if needs_grad:
        raise BackendUnavailableError(
            "backend='numba' builds no gradients, but the inputs require grad; render under "
            "torch.no_grad() or use backend='torch'"
        )
    if not numba_available():
        raise BackendUnavailableError(
            "backend='numba' needs numba: pip install 'gs3d-core[fast-cpu]', or use backend='torch'"
        )


def _background(
    background, shape: tuple[int, ...], dtype, device, check: bool
) -> torch.Tensor | None:
    """Background as ``[..., C, 3]`` (``shape`` = batch + (C,)) or ``None`` for black."""
    if background is None:
        return None
    if isinstance(background, bool):
        raise ValidationError(
            "background", "None, a float, 3 floats or a tensor [..., C, 3]", "bool"
        )
    if isinstance(background, (int, float)):
        bg = torch.full((3,), float(background), dtype=dtype, device=device)
    elif isinstance(background, torch.Tensor):
        bg = background.to(device=device, dtype=dtype)
    elif isinstance(background, Sequence):
        bg = torch.as_tensor([float(v) for v in background], dtype=dtype, device=device)
    else:
        raise ValidationError(
            "background",
            "None, a float, 3 floats or a tensor [..., C, 3]",
            type(background).__name__,
        )
    if bg.ndim == 0:
        bg = bg.expand(3)
    if bg.shape[-1] != 3:
        raise ValidationError(
            "background", "3 colour channels in the last dim", f"shape {tuple(bg.shape)}"
        )
    try:
        bg = torch.broadcast_to(bg, (*shape, 3))
    except RuntimeError:
        raise ValidationError(
            "background",
            f"a shape broadcastable to {(*shape, 3)} (batch..., C, 3)",
            f"shape {tuple(bg.shape)}",
        ) from None
    if check and not bool(torch.isfinite(bg).all()):
        raise ValidationError("background", "finite values", "NaN/Inf entries")
    return bg.contiguous()


def _check_finite(g: Gaussians, viewmats: torch.Tensor, Ks: torch.Tensor) -> None:
    named = {
        "gaussians.means": g.means,
        "gaussians.quats": g.quats,
        "gaussians.scales": g.scales,
        "gaussians.opacities": g.opacities,
        "gaussians.sh": g.sh,
        "cameras.viewmats": viewmats,
        "cameras.Ks": Ks,
    }
    with torch.no_grad():
        for name, t in named.items():
            if t.numel() and not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise ValidationError(name, "finite values", f"{bad} NaN/Inf entries")


def render(
    gaussians: Gaussians,
    cameras: Cameras,
    background: torch.Tensor | Sequence[float] | float | None = None,
    mode: RenderMode = "RGB",
    backend: Backend = "auto",
    rasterize_mode: RasterizeMode = "classic",
    *,
    sh_degree: int | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    radius_clip: float = 0.0,
    check_finite: bool | None = None,
) -> RenderOutput:
    """Render ``gaussians [..., N]`` from ``cameras [..., C]`` (3DGS, Kerbl et al. 2023, Eq. 3).

    Differentiable w.r.t. means, quats, scales, opacities, SH and a tensor background. SH bands
    up to ``sh_degree`` (default: all the Gaussians carry, at most 3) are evaluated along the
    camera-to-Gaussian direction. Cameras without batch dims are shared by every batch element
    of the Gaussians; cameras are moved to the Gaussians' device and dtype.

    Args:
        background: RGB composited behind the Gaussians: a float, 3 floats, or a tensor
            broadcastable to ``[..., C, 3]``; ``None`` is black. Depth composites over 0.
        mode: "RGB", "RGB+D" (accumulated depth), "RGB+ED" (expected depth), "D", "ED".
        backend: "torch" (pure PyTorch, any device), "gsplat" (CUDA kernels, needs
            ``gs3d-core[cuda]``), "numba" (the torch backend's projection with a compiled
            compositor: CPU, no gradients, the same images several times faster; needs
            ``gs3d-core[fast-cpu]``), or "auto": gsplat for CUDA tensors when it can run, numba
            on the CPU when nothing needs gradients and numba is installed, else torch.
        rasterize_mode: "classic" or "antialiased" (Mip-Splatting's 2D filter compensation).
        near_plane, far_plane: depth range kept; Gaussians outside are culled (no NaN).
        eps2d: low-pass variance added to every projected covariance (pixels^2).
        radius_clip: cull Gaussians whose pixel radius is at most this.
        check_finite: reject NaN/Inf inputs naming the field; ``None`` checks on CPU only,
            where it is cheap (on CUDA it would synchronise every call).
    """
    # This wrapper runs every training step in front of sub-millisecond gsplat kernels, so it
    # reads each attribute once and touches tensors only when a conversion is needed.
    if not isinstance(gaussians, Gaussians):
        raise ValidationError("gaussians", "a gs_core.Gaussians", type(gaussians).__name__)
    if not isinstance(cameras, Cameras):
        raise ValidationError("cameras", "a gs_core.Cameras", type(cameras).__name__)
    if mode not in MODES:
        raise ValidationError("mode", f"one of {MODES}", repr(mode))
    if backend not in BACKENDS:
        raise ValidationError("backend", f"one of {BACKENDS}", repr(backend))
    if rasterize_mode not in RASTERIZE_MODES:
        raise ValidationError("rasterize_mode", f"one of {RASTERIZE_MODES}", repr(rasterize_mode))
    g = gaussians
    means, sh = g.means, g.sh
    dev, dtype = means.device, means.dtype
    if dtype is not torch.float32 and dtype is not torch.float64:
        raise ValidationError("gaussians", "float32 or float64 tensors", str(dtype))
    have = math.isqrt(sh.shape[-2]) - 1
    deg = have if sh_degree is None else sh_degree
    if have > MAX_SH_DEGREE or sh_degree is not None:
        top = min(have, MAX_SH_DEGREE)
        if isinstance(deg, bool) or not isinstance(deg, int) or not 0 <= deg <= top:
            raise ValidationError(
                "sh_degree",
                f"an int in [0, {top}] (the Gaussians carry SH degree {have})",
                repr(deg),
            )

    batch = means.shape[:-2]
    viewmats, Ks = cameras.viewmats, cameras.Ks
    if viewmats.device != dev or viewmats.dtype is not dtype:
        viewmats = viewmats.to(device=dev, dtype=dtype)
        Ks = Ks.to(device=dev, dtype=dtype)
    c = viewmats.shape[-3]
    if viewmats.shape[:-3] != batch:
        if viewmats.ndim > 3:
            raise ValidationError(
                "cameras",
                f"batch shape {tuple(batch)} (the Gaussians' leading dims) or none",
                f"batch shape {cameras.batch_shape} (viewmats {tuple(cameras.viewmats.shape)})",
            )
        viewmats = viewmats.expand(*batch, c, 4, 4).contiguous()
        Ks = Ks.expand(*batch, c, 3, 3).contiguous()
    if c == 0:
        raise ValidationError("cameras", "at least one camera", "C = 0")
    width, height = cameras.width, cameras.height

    check = check_finite or (check_finite is None and dev.type == "cpu")
    if check:
        _check_finite(g, viewmats, Ks)
    bg = None
    if background is not None:
        bg = _background(background, (*batch, c), dtype, dev, check)

    if means.shape[-2] == 0:
        return _empty(tuple(batch), c, width, height, bg, mode, dtype, dev)

    needs_grad = torch.is_grad_enabled() and (
        means.requires_grad
        or sh.requires_grad
        or g.quats.requires_grad
        or g.scales.requires_grad
        or g.opacities.requires_grad
        or (bg is not None and bg.requires_grad)
    )
    name = _choose_backend(backend, dev, dtype, needs_grad)
    if name == "gsplat":
        fn = render_gsplat
    elif name == "numba":
        fn = functools.partial(render_torch, compositor="numba")
    else:
        fn = render_torch
    colors, alphas, meta = fn(
        means,
        g.quats,
        g.scales,
        g.opacities,
        sh,
        deg,
        viewmats,
        Ks,
        width,
        height,
        bg,
        mode,
        rasterize_mode=rasterize_mode,
        near_plane=near_plane,
        far_plane=far_plane,
        eps2d=eps2d,
        radius_clip=radius_clip,
    )
    meta["backend"] = name
    m2 = meta["means2d"]
    if m2.requires_grad:
        # Densification (3DGS Sec. 5.2) reads the view-space positional gradient after backward.
        m2.retain_grad()
    if mode == "RGB":
        return RenderOutput(colors, alphas, None, meta)
    if mode == "RGB+D" or mode == "RGB+ED":
        return RenderOutput(colors[..., :3], alphas, colors[..., 3:4], meta)
    return RenderOutput(None, alphas, colors, meta)


def _empty(batch, c, width, height, bg, mode, dtype, dev) -> RenderOutput:
    """N = 0: every pixel shows the background."""
    img_shape = (*batch, c, height, width)
    rgb = depth = None
    if mode in ("RGB", "RGB+D", "RGB+ED"):
        if bg is None:
            rgb = torch.zeros((*img_shape, 3), dtype=dtype, device=dev)
        else:
            rgb = bg[..., None, None, :].expand(*img_shape, 3).clone()
    if mode != "RGB":
        depth = torch.zeros((*img_shape, 1), dtype=dtype, device=dev)
    meta = {
        "radii": torch.zeros((*batch, c, 0, 2), dtype=torch.int32, device=dev),
        "means2d": torch.zeros((*batch, c, 0, 2), dtype=dtype, device=dev),
        "depths": torch.zeros((*batch, c, 0), dtype=dtype, device=dev),
        "gaussian_ids": None,
        "width": width,
        "height": height,
        "n_batches": math.prod(batch),
        "n_cameras": c,
        "backend": "none",
    }
    alpha = torch.zeros((*img_shape, 1), dtype=dtype, device=dev)
    return RenderOutput(rgb=rgb, alpha=alpha, depth=depth, meta=meta)
